#!/usr/bin/env bash
# The main job on the embedded file log: build, generate a day of Nile
# shopper events, append them to a partitioned log, read them back as a
# consumer group in two runs (no gap, no duplicate), validate and enrich them
# into a second log, and show the positions.
#
# It builds with cargo's default (dev) profile, the one the tests use, and
# with --examples, which turns on the same dependency features as the tests
# (a plain --bins build would compile a few crates differently): so
# scripts/test.sh afterwards compiles only the tests, not the dependency tree
# again. bench/ builds --release for its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/install-build-deps.sh
echo "== building the tools: cargo build --bins --examples"
if [ ! -x target/debug/log-tail ]; then
  echo "   The first build compiles about 250 crates: roughly 10 to 20 minutes on a"
  echo "   2-core machine, 3 to 5 on 8 cores; later builds take seconds."
fi
cargo build --bins --examples
bin=$PWD/target/debug
export PATH="$bin:$PATH"
out=demo-out
rm -rf "$out" && mkdir -p "$out"
events=${EVENTS:-200000}

echo "== generating $events Nile events"
nile-events --count "$events" --seed 7 > "$out/events.ndjson"

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

echo "== what the log holds (log-tail --inspect)"
log-tail "$out/raw.log" --inspect

echo
echo "== done in $((SECONDS - started)) s; the results are in $out/:"
du -sh "$out"/* | sed "s/^/   /"
cat <<EOF

Try next, from this directory, with the tools on your PATH:
  export PATH="$bin:\$PATH"
  log-tail $out/raw.log --inspect                         # what the log holds: partitions, schemas, groups
  log-tail $out/raw.log --from -2 --partition 0           # the last two events of partition 0
  log-tail $out/raw.log --group orders --positions        # where the group 'orders' is
  validate --registry examples/schemas $out/events.ndjson > good.ndjson
  nile-events --count 10 --seed 1                         # more events
  man -l man/log-tail.1                                    # a man page per tool
Then: the README's "First steps" run on these files; scripts/install.sh
--bin-dir $bin installs these tools, man pages and completions into
~/.local; scripts/test.sh runs the tests.
EOF
