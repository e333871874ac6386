#!/usr/bin/env bash
# The book's chapter 3 ("Event stream processing"): Nile's shopper events go
# into a raw log; a single-event processor reads them, looks up where each
# shopper is from their IP address in a MaxMind GeoLite2 City database, and
# writes the events on to an enriched log; events it cannot process go to a
# stream of bad events. Here the processor is `enrich`, between log-tail and
# log-append.
#
#   examples/ch3-geo-enrich.sh                               # generated test database
#   GEOIP_DB=/path/to/GeoLite2-City.mmdb examples/ch3-geo-enrich.sh
#
# Environment: EVENTS (generated events, default 20000), OUT (output folder,
# default ch3-out), UNILOG_BIN (folder of built binaries; default: build
# them, as scripts/demo.sh does), PYTHON (a python with mmdb-writer, for the
# generated database; default python3).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out=${OUT:-ch3-out}
events=${EVENTS:-20000}
if [ -z "${UNILOG_BIN:-}" ]; then
  (cd "$repo" && cargo build --bins --examples)
  UNILOG_BIN="$repo/target/debug"
fi
export PATH="$UNILOG_BIN:$PATH"
rm -rf "$out" && mkdir -p "$out"

db=${GEOIP_DB:-}
if [ -z "$db" ]; then
  echo "== building a test GeoLite2-City layout database (set GEOIP_DB to use MaxMind's)"
  db="$out/City.mmdb"
  "${PYTHON:-python3}" "$repo/tests/fixtures/make-mmdb.py" "$db" --cover 23,45,62,81,104,151,185,203
fi

echo "== $events shopper events, the book's own event, and two that cannot be located"
"$UNILOG_BIN/nile-events" --count "$events" --seed 3 > "$out/input.ndjson"
cat >> "$out/input.ndjson" <<'JSON'
{"schema":"iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0","data":{"shopper":{"id":"123","name":"Jane","ipAddress":"70.46.123.145"},"product":{"sku":"aapl-001","name":"iPad"},"timestamp":"2018-10-15T12:01:35Z"}}
{"schema":"iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0","data":{"shopper":{"id":"456","name":"Mo","ipAddress":"not.an.ip.address"},"product":{"sku":"aapl-001","name":"iPad"},"timestamp":"2018-10-15T12:01:36Z"}}
{"schema":"iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0","data":{"shopper":{"id":"789","name":"Al","ipAddress":1234},"product":{"sku":"aapl-001","name":"iPad"},"timestamp":"2018-10-15T12:01:37Z"}}
JSON
log-append "$out/raw.log" --partitions 2 --key .data.shopper.id < "$out/input.ndjson"

echo "== log-tail raw.log | enrich --geoip | log-append enriched.log"
set +o pipefail
log-tail "$out/raw.log" --group geo \
  | enrich --geoip "$db" --ip .data.shopper.ipAddress --into .data.shopper --bad "$out/bad.ndjson" -v \
  | log-append "$out/enriched.log" --key .data.shopper.id
status=("${PIPESTATUS[@]}")
set -o pipefail
# enrich exits 1 when some events failed (they are in bad.ndjson); more is an error.
if [ "${status[0]}" -ne 0 ] || [ "${status[1]}" -gt 1 ] || [ "${status[2]}" -ne 0 ]; then
  echo "pipeline failed: ${status[*]}" >&2
  exit 1
fi

log-tail "$out/enriched.log" > "$out/enriched.ndjson"
echo "== the book's event, enriched"
grep '"name":"Jane","ipAddress":"70.46.123.145"' "$out/enriched.ndjson" | jq -c .data.shopper
echo "== shoppers' events by city"
jq -r '.data.shopper.geo.city // "(not located)"' "$out/enriched.ndjson" | sort | uniq -c | sort -rn
echo "== bad events ($(wc -l < "$out/bad.ndjson"))"
jq -c '{line: .data.input.line, error: .data.errors[0].message}' "$out/bad.ndjson"
