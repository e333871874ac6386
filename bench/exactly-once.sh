#!/usr/bin/env bash
# The cost of exactly-once: log to log with and without positions and the
# destination's marks, in one run, interleaved, as medians of RUNS runs and
# their ratio. Usage: bench/exactly-once.sh   (COUNT=N, RUNS=N)
#   copy:     log-tail SRC | log-append DST
#   copy-eo:  log-tail SRC --resume-from DST | log-append DST   (positions, marks, dedup)
#   pipe:     log-tail SRC | validate | enrich --event-id=content | log-append DST
#   pipe-eo:  the same with --resume-from DST
source "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}
SRC=$WORK/eo-src.log
DST=$WORK/eo-dst.log
rm -rf "$SRC"; "$BIN/log-append" "$SRC" --partitions 4 --key .data.shopper.id < "$EVENTS"
SCHEMAS=$PWD/examples/schemas

# seconds COMMAND: wall-clock seconds of one run of a shell command, after
# removing the destination.
seconds() {
  rm -rf "$DST"
  local t0 t1
  t0=$(date +%s.%N)
  bash -o pipefail -c "$1" >/dev/null 2>&1
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", b - a}'
}
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

declare -A CMD=(
  [copy]="'$BIN/log-tail' '$SRC' | '$BIN/log-append' '$DST'"
  [copy-eo]="'$BIN/log-tail' '$SRC' --resume-from '$DST' | '$BIN/log-append' '$DST'"
  [pipe]="'$BIN/log-tail' '$SRC' | '$BIN/validate' --registry '$SCHEMAS' | '$BIN/enrich' --event-id=content | '$BIN/log-append' '$DST'"
  [pipe-eo]="'$BIN/log-tail' '$SRC' --resume-from '$DST' | '$BIN/validate' --registry '$SCHEMAS' | '$BIN/enrich' --event-id=content | '$BIN/log-append' '$DST'"
)
ORDER=(copy copy-eo pipe pipe-eo)
declare -A TIMES
for _ in $(seq "$RUNS"); do
  for name in "${ORDER[@]}"; do
    TIMES[$name]+="$(seconds "${CMD[$name]}") "
  done
done
echo
printf '%-52s %10s %12s\n' "log to log, $COUNT events of ~$((BYTES / COUNT)) bytes, 4 partitions" "median s" "events/s"
declare -A MED
for name in "${ORDER[@]}"; do
  MED[$name]=$(tr ' ' '\n' <<<"${TIMES[$name]}" | grep . | median)
  printf '%-52s %10.3f %12.0f\n' "$name" "${MED[$name]}" \
    "$(awk -v c="$COUNT" -v s="${MED[$name]}" 'BEGIN{print c/s}')"
done
awk -v a="${MED[copy]}" -v b="${MED[copy-eo]}" -v c="${MED[pipe]}" -v d="${MED[pipe-eo]}" 'BEGIN{
  printf "\nexactly-once cost: log-tail | log-append %+.1f%%, through validate | enrich %+.1f%%\n", (b/a-1)*100, (d/c-1)*100 }'
