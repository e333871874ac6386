#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: from Debian's
# packages and PyPI only. Idempotent and quick when everything is there.
set -euo pipefail

need_apt=()
command -v jq >/dev/null || need_apt+=(jq)
if ((${#need_apt[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
