#!/usr/bin/env bash
# validate on generated Nile events (three schemas, from examples/schemas),
# beside peers doing the same job in the same run: the plain Rust loop over
# the jsonschema crate, ajv (node), fastjsonschema (Python) and, on a small
# sample, check-jsonschema. Peers are installed under target/bench from npm
# and PyPI when missing; a peer that cannot be installed is skipped.
# Usage: bench/validate.sh   (COUNT=N to change size, SLOW_COUNT for check-jsonschema)
source "$(dirname "$0")/common.sh"

REG=$PWD/examples/schemas
OUT=$WORK/valid.ndjson
PEERS=$PWD/bench/peers

# Every generated event must be valid, or the comparison is meaningless.
"$BIN/validate" --registry "$REG" "$EVENTS" > "$OUT"
cmp -s "$OUT" "$EVENTS" || { echo "validate changed or dropped events" >&2; exit 1; }

measure "validate"                   sh -c "'$BIN/validate' --registry '$REG' '$EVENTS' > '$OUT'"
measure "validate < pipe"            sh -c "cat '$EVENTS' | '$BIN/validate' --registry '$REG' > '$OUT'"
measure "validate -j 1"               sh -c "'$BIN/validate' -j 1 --registry '$REG' '$EVENTS' > '$OUT'"
measure "rust serde_json+jsonschema" sh -c "'$BIN/examples/validate-naive' '$REG' < '$EVENTS' > '$OUT'"

if [ ! -d "$WORK/node/node_modules/ajv-formats" ] && command -v npm >/dev/null; then
  npm install --silent --prefix "$WORK/node" ajv@8 ajv-formats@3 >/dev/null 2>&1 || true
fi
if [ -d "$WORK/node/node_modules/ajv-formats" ]; then
  NODE_PATH=$WORK/node/node_modules measure "node ajv" \
    sh -c "NODE_PATH='$WORK/node/node_modules' node '$PEERS/ajv_validate.js' '$REG' < '$EVENTS' > '$OUT'"
else
  echo "(ajv skipped: npm install failed)"
fi

if [ ! -x "$WORK/venv/bin/check-jsonschema" ]; then
  python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q fastjsonschema check-jsonschema >/dev/null 2>&1 || true
fi
if [ -x "$WORK/venv/bin/python" ] && "$WORK/venv/bin/python" -c "import fastjsonschema" 2>/dev/null; then
  measure "python fastjsonschema" sh -c "'$WORK/venv/bin/python' '$PEERS/fastjsonschema_validate.py' '$REG' < '$EVENTS' > '$OUT'"
else
  echo "(fastjsonschema skipped: pip install failed)"
fi

# Memory stays flat: the peak for a tenth of the events is the same.
SMALL=$WORK/events-small.ndjson
head -n $((COUNT / 10)) "$EVENTS" > "$SMALL"
EVENTS_ALL=$EVENTS BYTES_ALL=$BYTES COUNT_ALL=$COUNT
COUNT=$((COUNT / 10)) BYTES=$(stat -c %s "$SMALL")
measure "validate, a tenth of the events" sh -c "'$BIN/validate' --registry '$REG' '$SMALL' > '$OUT'"

# check-jsonschema validates files, not streams, at a few thousand a second:
# it gets a small sample, its rate scaled to events/s like the others.
if [ -x "$WORK/venv/bin/check-jsonschema" ]; then
  SLOW=${SLOW_COUNT:-3000}
  head -n "$SLOW" "$EVENTS_ALL" > "$WORK/events-slow.ndjson"
  COUNT=$SLOW BYTES=$(stat -c %s "$WORK/events-slow.ndjson")
  BEFORE="rm -rf '$WORK/cj'; mkdir -p '$WORK/cj'" measure "check-jsonschema ($SLOW events)" \
    sh -c "'$WORK/venv/bin/python' '$PEERS/check_jsonschema_validate.py' '$REG' '$WORK/cj' '$WORK/venv/bin/check-jsonschema' < '$WORK/events-slow.ndjson'"
  rm -rf "$WORK/cj"
fi
