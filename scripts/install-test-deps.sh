#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, from Debian's
# packages and PyPI only, and is quick when everything is there.
#
# - Debian packages (jq, python3, python3-venv) system-wide with apt-get: as
#   root directly, otherwise through sudo when it is there.
# - The tests' Python packages into a virtual environment of their own,
#   created once and reused: never into the system Python (Debian's refuses
#   pip installs, "externally-managed-environment"). It lives in
#   $UNILOG_TEST_VENV, by default ${XDG_CACHE_HOME:-~/.cache}/unilog/
#   test-venv-pyX.Y-HASH (one per base python), shared by every clone of the
#   repository; a change to the package list below installs what it adds.
# - The path of that venv's python goes to target/test-python (and to stdout
#   with --print-python). scripts/test.sh exports it as UNILOG_TEST_PYTHON;
#   the tests (tests/common::python) use that variable, else the file, else
#   `python3`.
# - What the build needs (scripts/install-build-deps.sh: cmake and headers
#   for rdkafka's cmake-build).
# - For the Kafka tests (tests/kafka.rs): Debian's kcat; the Kafka-compatible broker nisshi,
#   built once with cargo install into ${XDG_CACHE_HOME:-~/.cache}/unilog/
#   nisshi-VERSION (about 8 minutes on 2 cores; later runs skip it); and a
#   kcat wrapper in the venv that runs Debian's kcat on the librdkafka of
#   PyPI's confluent-kafka wheel (Debian's librdkafka 2.0.2 cannot talk to
#   these brokers: an ApiVersions bug fixed in 2.2). Their paths go to
#   target/test-nisshi and target/test-kcat; scripts/test.sh exports them as
#   UNILOG_TEST_NISSHI and UNILOG_TEST_KCAT.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- The tests' Python packages (PyPI names), one per line: add yours here.
python_packages=(
  mmdb-writer # enrich: tests/fixtures/make-mmdb.py builds MaxMind DB files
  netaddr     # enrich: make-mmdb.py
  aiosmtpd    # alert: the SMTP server of tests/fixtures/smtp_server.py
  fastavro    # archive: another Avro implementation reads the archive's files
  zstandard   # archive: fastavro's zstandard codec (fastavro before 1.12)
  backports.zstd # archive: the same codec in fastavro 1.12 and later, on Python < 3.14
  cramjam     # archive: fastavro's snappy codec
  duckdb      # archive: the chapter 6/9 example queries the Hive-partitioned archive
  cryptography # alert: the test PKI of smtp_server.py --make-certs (an expired
               # certificate, which the openssl 3.0 CLI cannot make directly)
  confluent-kafka # kafka: its wheel's librdkafka (2.2 or later) runs Debian's kcat
)
# ---- end of the list

say() { echo "install-test-deps: $*" >&2; }

# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
scripts/install-build-deps.sh

need_apt=()
command -v jq >/dev/null || need_apt+=(jq)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
command -v kcat >/dev/null || need_apt+=(kcat)
if ((${#need_apt[@]})); then apt_install "${need_apt[@]}"; fi

base=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
# One venv per base Python, so clones run by different pythons never rebuild
# one another's venv under running tests.
tag=$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')-$(echo "$base" | sha256sum | cut -c1-8)
cache=${XDG_CACHE_HOME:-${HOME:-$PWD/target}/.cache}/unilog
venv=${UNILOG_TEST_VENV:-$cache/test-venv-$tag}
stamp="packages: ${python_packages[*]}"

mkdir -p "$(dirname "$venv")"
# Clones of the repository share the venv: one install at a time.
exec 9>"$venv.lock"
flock 9
if ! "$venv/bin/python" -c '' 2>/dev/null; then
  say "creating $venv from $base"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 makes venvs with pip only when python3-venv is there.
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
fi
if [ "$(cat "$venv/.unilog-stamp" 2>/dev/null)" != "$stamp" ]; then
  # Installs only add: tests already running on this venv keep working.
  say "pip install into $venv: ${python_packages[*]}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
  echo "$stamp" >"$venv/.unilog-stamp"
fi
# kcat on the wheel's librdkafka: its file name carries a hash (auditwheel),
# so a directory of its own gives it the soname kcat asks for.
rdkafka=$("$venv/bin/python" -c 'import confluent_kafka, glob, os
d = os.path.dirname(confluent_kafka.__file__)
print(sorted(glob.glob(d + "*.libs/librdkafka*.so*") + glob.glob(d + "/.libs/librdkafka*.so*"))[0])')
mkdir -p "$venv/kcat-lib"
ln -sfn "$rdkafka" "$venv/kcat-lib/librdkafka.so.1"
kcat=$venv/bin/kcat
wrapper="#!/bin/sh
# Debian's kcat on the newer librdkafka of the confluent-kafka wheel
# (written by unilog's scripts/install-test-deps.sh).
export LD_LIBRARY_PATH='$venv/kcat-lib'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
exec '$(command -v kcat)' \"\$@\"
"
if [ "$(cat "$kcat" 2>/dev/null)" != "${wrapper%$'\n'}" ]; then
  # Replaced whole, so a test running the old one never sees half of it.
  printf '%s' "$wrapper" >"$kcat.tmp"
  chmod +x "$kcat.tmp"
  mv "$kcat.tmp" "$kcat"
fi
flock -u 9
if ! "$kcat" -V 2>&1 | grep -Eq 'librdkafka (2\.([2-9]|[1-9][0-9])|[3-9])'; then
  say "$kcat does not run on librdkafka 2.2 or later: $("$kcat" -V 2>&1 | grep -i librdkafka)"
  exit 2
fi

# The broker: nisshi, built once per machine (one build at a time).
nisshi_version=0.8.1
nisshi_root=$cache/nisshi-$nisshi_version
nisshi=$nisshi_root/bin/nisshi
mkdir -p "$cache"
exec 8>"$nisshi_root.lock"
flock 8
if ! [ -x "$nisshi" ]; then
  say "building the test broker nisshi $nisshi_version into $nisshi_root (about 8 minutes on 2 cores, once)"
  # --debug: half the build time of a release build, fast enough for tests;
  # dynostore alone gives its memory:// storage, without libsql or postgres.
  cargo install nisshi --version "$nisshi_version" --locked --debug --ignore-rust-version \
    --no-default-features --features dynostore --root "$nisshi_root" --quiet
fi
flock -u 8

mkdir -p target
echo "$venv/bin/python" >target/test-python
echo "$kcat" >target/test-kcat
echo "$nisshi" >target/test-nisshi
if [ "${1:-}" = --print-python ]; then echo "$venv/bin/python"; fi
