# Shared by the install scripts: installs Debian packages with apt-get, as
# root directly or through sudo. Source it after defining say().
# shellcheck shell=bash

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    say "need root to run '$*': run this script as root, or install sudo"
    exit 2
  fi
}

apt_updated=
# apt_install PACKAGE...: installs them, updating the package lists once.
apt_install() {
  if ! command -v apt-get >/dev/null; then
    say "missing $*, and there is no apt-get here: install them with your package manager"
    exit 2
  fi
  say "apt-get install $*"
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
