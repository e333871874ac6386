#!/usr/bin/env bash
# Runs every test: installs what the tests need, then the unit tests and the
# tests that drive the real binaries (which start their own services).
# The tests run their Python fixtures with the test venv's python, and the
# Kafka tests the broker and kcat it installed: with these variables set, a
# test whose tool is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
UNILOG_TEST_PYTHON=$(scripts/install-test-deps.sh --print-python)
UNILOG_TEST_NISSHI=$(cat target/test-nisshi)
UNILOG_TEST_KCAT=$(cat target/test-kcat)
export UNILOG_TEST_PYTHON UNILOG_TEST_NISSHI UNILOG_TEST_KCAT
cargo test --locked "$@"
