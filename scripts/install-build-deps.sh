#!/usr/bin/env bash
# Installs what building unilog needs beyond the Rust toolchain, from
# Debian's packages, and is quick when everything is there: cmake and the
# libcurl, OpenSSL and zlib headers for librdkafka, which the rdkafka crate
# builds from source (cmake-build) because Debian's librdkafka 2.0.2 cannot
# talk to current brokers. scripts/demo.sh and scripts/install-test-deps.sh
# run it first.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "install-build-deps: $*" >&2; }
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v curl-config >/dev/null || need_apt+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need_apt+=(libssl-dev)
pkg-config --exists zlib 2>/dev/null || need_apt+=(zlib1g-dev)
if ((${#need_apt[@]})); then apt_install "${need_apt[@]}"; fi
