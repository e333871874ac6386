#!/usr/bin/env bash
# Runs every test: installs what the tests need, then the unit tests and the
# tests that drive the real binaries (which start their own services).
# The tests run their Python fixtures with the test venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
UNILOG_TEST_PYTHON=$(scripts/install-test-deps.sh --print-python)
export UNILOG_TEST_PYTHON
cargo test --locked "$@"
