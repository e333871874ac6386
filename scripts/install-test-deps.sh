#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: from Debian's
# packages and PyPI only. Idempotent and quick when everything is there.
set -euo pipefail

need_apt=()
command -v jq >/dev/null || need_apt+=(jq)
# validate's HTTP registry test serves a directory with python3 -m http.server
command -v python3 >/dev/null || need_apt+=(python3)
if ((${#need_apt[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# enrich's tests build MaxMind DB files with mmdb-writer (tests/fixtures/make-mmdb.py).
if ! python3 -c 'import mmdb_writer, netaddr' 2>/dev/null; then
  python3 -m pip install -q mmdb-writer netaddr
fi

# The alert tests' SMTP server (tests/fixtures/smtp_server.py).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
fi
