#!/usr/bin/env bash
# Installs the unilog tools, their man pages and their shell completions
# into a prefix (default ~/.local):
#
#   PREFIX/bin/TOOL                                        cargo install --path . --root PREFIX
#   PREFIX/share/man/man1/TOOL.1, man5/unilog-log.5        man TOOL (add PREFIX/share/man to MANPATH if needed)
#   PREFIX/share/bash-completion/completions/TOOL          bash-completion loads these on demand
#   PREFIX/share/zsh/site-functions/_TOOL                  add to fpath before compinit
#   PREFIX/share/fish/vendor_completions.d/TOOL.fish       fish finds these under ~/.local and /usr/local
#
# Usage: scripts/install.sh [--prefix DIR] [--debug] [--bin-dir DIR]
#   --prefix DIR   where to install (default $PREFIX or ~/.local; /usr/local needs root)
#   --debug        build without optimisation (a few minutes instead of 15 to 20 on 2 cores)
#   --bin-dir DIR  install binaries already built in DIR (such as target/debug after
#                  scripts/demo.sh) instead of running cargo install
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${PREFIX:-$HOME/.local}
profile=()
bin_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --debug) profile=(--debug); shift ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

tools=()
for f in src/bin/*.rs; do tools+=("$(basename "$f" .rs)"); done

mkdir -p "$prefix/bin"
if [ -n "$bin_dir" ]; then
  echo "== installing the binaries from $bin_dir into $prefix/bin"
  for t in "${tools[@]}"; do install -m 755 "$bin_dir/$t" "$prefix/bin/$t"; done
else
  echo "== cargo install --path . --root $prefix ${profile[*]}"
  echo "   (a release build of about 250 crates: 15 to 20 minutes on 2 cores; cargo shows its progress)"
  cargo install --path . --root "$prefix" --locked --force "${profile[@]}"
fi

echo "== man pages into $prefix/share/man"
mkdir -p "$prefix/share/man/man1" "$prefix/share/man/man5"
install -m 644 man/*.1 "$prefix/share/man/man1/"
install -m 644 man/*.5 "$prefix/share/man/man5/"

echo "== completions for bash, zsh and fish into $prefix/share"
bash_dir=$prefix/share/bash-completion/completions
zsh_dir=$prefix/share/zsh/site-functions
fish_dir=$prefix/share/fish/vendor_completions.d
mkdir -p "$bash_dir" "$zsh_dir" "$fish_dir"
for t in "${tools[@]}"; do
  "$prefix/bin/$t" --completions bash > "$bash_dir/$t"
  "$prefix/bin/$t" --completions zsh > "$zsh_dir/_$t"
  "$prefix/bin/$t" --completions fish > "$fish_dir/$t.fish"
done

echo
echo "Installed ${tools[*]} into $prefix."
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "Add $prefix/bin to your PATH:  export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
echo "bash loads the completions by itself (bash-completion); zsh needs"
echo "  fpath=($zsh_dir \$fpath)  before compinit; fish finds them under ~/.local and /usr/local."
echo "man pages: man log-tail (or MANPATH=$prefix/share/man:\$MANPATH man log-tail)."
