#!/usr/bin/env bash
# log-append and log-tail on generated events, beside cat and jq in the same
# run, then follow-mode latency. Usage: bench/log.sh   (COUNT=N to change size)
source "$(dirname "$0")/common.sh"

LOG=$WORK/bench.log
OUT=$WORK/copy.ndjson
measure "cat > file"                 sh -c "cat '$EVENTS' > '$OUT'"
command -v jq >/dev/null && measure "jq -c . > file" sh -c "jq -c . '$EVENTS' > '$OUT'"
BEFORE="rm -rf '$LOG'" measure "log-append (fsync)" sh -c "'$BIN/log-append' '$LOG' < '$EVENTS'"
BEFORE="rm -rf '$LOG'" measure "log-append --key (fsync)" sh -c "'$BIN/log-append' '$LOG' --key .data.shopper.id --partitions 4 < '$EVENTS'"
# BASE_BIN=DIR measures another build's binaries in the same run (before and
# after a change), e.g. BASE_BIN=/tmp/base/target/release bench/log.sh
if [ -n "${BASE_BIN:-}" ]; then
  BEFORE="rm -rf '$LOG'" measure "base: log-append (fsync)" sh -c "'$BASE_BIN/log-append' '$LOG' < '$EVENTS'"
  BEFORE="rm -rf '$LOG'" measure "base: log-append --key (fsync)" sh -c "'$BASE_BIN/log-append' '$LOG' --key .data.shopper.id --partitions 4 < '$EVENTS'"
  BEFORE="rm -rf '$LOG'" measure "log-append (fsync), again" sh -c "'$BIN/log-append' '$LOG' < '$EVENTS'"
fi
rm -rf "$LOG"; "$BIN/log-append" "$LOG" < "$EVENTS"
measure "cat file > /dev/null"      sh -c "cat '$EVENTS' > /dev/null"
measure "log-tail > /dev/null"      sh -c "'$BIN/log-tail' '$LOG' > /dev/null"
measure "log-tail | cat > /dev/null" sh -c "'$BIN/log-tail' '$LOG' | cat > /dev/null"
measure "log-tail --with-position"  sh -c "'$BIN/log-tail' '$LOG' --with-position > /dev/null"
measure "log-tail --verify"         "$BIN/log-tail" "$LOG" --verify

echo
python3 bench/follow_latency.py "$BIN" "$WORK/latency.log"
