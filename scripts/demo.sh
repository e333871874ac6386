#!/usr/bin/env bash
# The main job on the embedded file log: build, generate a day of Nile
# shopper events, append them to a partitioned log, read them back as a
# consumer group in two runs (no gap, no duplicate), validate and enrich them
# into a second log, and show the positions.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins --examples
export PATH="$PWD/target/release:$PATH"
out=demo-out
rm -rf "$out" && mkdir -p "$out"
events=${EVENTS:-200000}

echo "== generating $events Nile events"
target/release/examples/nile-events --count "$events" --seed 7 > "$out/events.ndjson"

echo "== log-append: into $out/raw.log, 4 partitions, keyed by shopper"
log-append "$out/raw.log" --partitions 4 --key .data.shopper.id -v < "$out/events.ndjson"

echo "== log-tail as group 'orders': the first 1000 events, then the rest"
log-tail "$out/raw.log" --group orders --count 1000 > "$out/part1.ndjson"
log-tail "$out/raw.log" --group orders > "$out/part2.ndjson"
cat "$out/part1.ndjson" "$out/part2.ndjson" | sort | cmp - <(sort "$out/events.ndjson") \
  && echo "   every event read exactly once"

echo "== validate | enrich as group 'enrich', into $out/enriched.log"
log-tail "$out/raw.log" --group enrich \
  | validate --registry examples/schemas --bad "$out/failures.ndjson" \
  | enrich --anonymize-ip 1 --ip .data.shopper.ipAddress --event-id --enriched-at \
  | log-append "$out/enriched.log" --partitions 4 --key .data.shopper.id -v
log-tail "$out/enriched.log" -n 1 --partition 0

echo "== events by schema (log-tail | grep | sort | uniq -c)"
log-tail "$out/raw.log" \
  | grep -o "iglu:com.nile/[a-z_]*" | sort | uniq -c | sort -rn

echo "== positions and lag of group 'orders'"
log-tail "$out/raw.log" --group orders --positions

echo "== integrity"
log-tail "$out/raw.log" --verify
