# Shared by the benchmark scripts: builds release binaries, makes the data
# set once, and times commands side by side.
# shellcheck shell=bash
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet ${BENCH_BUILD:---bins --examples}
BIN=$PWD/target/release
WORK=${BENCH_DIR:-$PWD/target/bench}
COUNT=${COUNT:-1000000}
mkdir -p "$WORK"
EVENTS=$WORK/events-$COUNT.ndjson
[ -s "$EVENTS" ] || "$BIN/nile-events" --count "$COUNT" --seed 42 > "$EVENTS"
BYTES=$(stat -c %s "$EVENTS")
printf '%-38s %12s %10s %10s %10s\n' "command ($COUNT events, $((BYTES / 1048576)) MiB)" "events/s" "MB/s" "seconds" "peak MiB"

# measure NAME COMMAND... : runs COMMAND under /usr/bin/time, best of 3.
measure() {
  local name=$1; shift
  local best="" mem=""
  for _ in 1 2 3; do
    [ -n "${BEFORE:-}" ] && eval "$BEFORE"
    local out
    /usr/bin/time -o "$WORK/time.txt" -f '%e %M' "$@" >/dev/null 2>&1 || true
    out=$(tail -1 "$WORK/time.txt")
    local s=${out% *} m=${out#* }
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; mem=$m; fi
  done
  awk -v n="$name" -v s="$best" -v m="$mem" -v c="$COUNT" -v b="$BYTES" 'BEGIN{
    if (s < 0.005) s = 0.005;
    printf "%-38s %12.0f %10.0f %10.2f %10.1f\n", n, c/s, b/s/1e6, s, m/1024 }'
}
