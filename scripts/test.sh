#!/usr/bin/env bash
# Runs every test: installs what the tests need, then the unit tests and the
# tests that drive the real binaries (which start their own services).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --locked "$@"
