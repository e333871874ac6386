#!/usr/bin/env bash
# enrich on generated events, beside jq (and jaq, when it is on PATH) in the
# same run: a jq add-field transform, geo-IP, a reference-table lookup, and
# all steps at once. Usage: bench/enrich.sh   (COUNT=N to change size)
#
# The MaxMind DB is made by tests/fixtures/make-mmdb.py in the GeoLite2 City
# layout: every /16 of the generator's address ranges plus 20,000 /24s
# (about 22,000 networks); GEOIP_DB=FILE uses a real database instead. The
# lookup table has a row per shopper id the generator uses (5,000).
#
# --ua: the generator's agents repeat (as real traffic's do), so most are
# answered from the per-worker cache; the 3,070 distinct real agents of
# tests/data/user-agents (each parsed once) show the uncached parse. With
# BASELINE=PATH/enrich (an older build) its --ua runs beside, in the same run;
# ONLY=ua runs the --ua rows alone.
source "$(dirname "$0")/common.sh"

DB=${GEOIP_DB:-$WORK/bench-city.mmdb}
[ -s "$DB" ] || python3 tests/fixtures/make-mmdb.py "$DB" --cover 23,45,62,81,104,151,185,203 --synthetic 20000
TABLE=$WORK/shoppers.csv
if [ ! -s "$TABLE" ]; then
  {
    echo 'id,segment,region,"lifetime value"'
    for i in $(seq 1 5000); do echo "$i,segment-$((i % 7)),\"R, $((i % 50))\",$((i * 37 % 10000)).$((i % 100))"; done
  } > "$TABLE"
fi
jq -Rn '[inputs | split(",")] | .[1:] | map({key: .[0], value: {segment: .[1]}}) | from_entries' < "$TABLE" > "$WORK/shoppers.json"

E=$BIN/enrich
ADD='.data.channel = "web"'
if [ "${ONLY:-all}" = all ]; then
# enrich uses one worker thread per CPU; -j 1 shows one core's share.
measure "enrich --jq (add field)"     "$E" --jq "$ADD" "$EVENTS"
measure "enrich -j 1 --jq (add field)" "$E" -j 1 --jq "$ADD" "$EVENTS"
measure "jq -c (add field) $(jq --version)" jq -c "$ADD" "$EVENTS"
if command -v jaq >/dev/null; then
  measure "jaq -c (add field) $(jaq --version | cut -d' ' -f2)" jaq -c "$ADD" "$EVENTS"
fi
measure "enrich --geoip (context)"   "$E" --geoip "$DB" --ip .data.shopper.ipAddress "$EVENTS"
measure "enrich -j 1 --geoip (context)" "$E" -j 1 --geoip "$DB" --ip .data.shopper.ipAddress "$EVENTS"
measure "enrich --geoip --into"      "$E" --geoip "$DB" --ip .data.shopper.ipAddress --into .data.shopper "$EVENTS"
measure "enrich --lookup (context)"  "$E" --lookup "$TABLE" --on .data.shopper.id --key id "$EVENTS"
measure "enrich -j 1 --lookup (context)" "$E" -j 1 --lookup "$TABLE" --on .data.shopper.id --key id "$EVENTS"
measure "jq --slurpfile (same join)" jq -c --slurpfile t "$WORK/shoppers.json" \
  '.derived_contexts = [{schema: "iglu:io.unilog/lookup/jsonschema/1-0-0", data: {table: "shoppers", key: .data.shopper.id, row: $t[0][.data.shopper.id]}}]' "$EVENTS"
fi
measure "enrich --ua (context)"       "$E" --ua .data.userAgent "$EVENTS"
measure "enrich -j 1 --ua (context)"  "$E" -j 1 --ua .data.userAgent "$EVENTS"
if [ -n "${BASELINE:-}" ]; then
  measure "before: enrich --ua"         "$BASELINE" --ua .data.userAgent "$EVENTS"
  measure "before: enrich -j 1 --ua"    "$BASELINE" -j 1 --ua .data.userAgent "$EVENTS"
fi
CORPUS=$WORK/ua-corpus.ndjson
jq -c '{schema: "iglu:com.acme/page_view/jsonschema/1-0-0", data: {ua}}' tests/data/user-agents/corpus.ndjson > "$CORPUS"
SAVED_COUNT=$COUNT SAVED_BYTES=$BYTES
COUNT=$(wc -l < "$CORPUS") BYTES=$(stat -c %s "$CORPUS")
measure "enrich -j 1 --ua, 3070 new agents" "$E" -j 1 --ua .data.ua "$CORPUS"
if [ -n "${BASELINE:-}" ]; then
  measure "before: -j 1 --ua, 3070 new agents" "$BASELINE" -j 1 --ua .data.ua "$CORPUS"
fi
COUNT=$SAVED_COUNT BYTES=$SAVED_BYTES
[ "${ONLY:-all}" = all ] || exit 0
measure "enrich, all 7 steps"         "$E" --geoip "$DB" --ip .data.shopper.ipAddress --anonymize-ip 1 \
  --lookup "$TABLE" --on .data.shopper.id --key id --ua .data.userAgent --jq "$ADD" --event-id --enriched-at "$EVENTS"

# Every event comes out of each enrich run, enriched.
n=$("$E" --geoip "$DB" --ip .data.shopper.ipAddress --lookup "$TABLE" --on .data.shopper.id --key id "$EVENTS" \
  | grep -c 'io.unilog/geo_location/jsonschema/1-0-1.*io.unilog/lookup/jsonschema/1-0-0' || true)
echo "check: $n of $COUNT events carry a geo and a lookup context"
