#!/usr/bin/env bash
# log-append and log-tail on Kafka beside kcat, against the same broker in
# the same run: interleaved, medians of RUNS runs, and kcat's time over
# ours (above 1: ours is faster). Usage: bench/kafka.sh   (COUNT=N, RUNS=N,
# PARTITIONS=N)
#
# The broker is the tests' nisshi (debug build, memory storage) on a free
# loopback port, and kcat the tests' wrapper (Debian's kcat on the
# confluent-kafka wheel's librdkafka): scripts/install-test-deps.sh installs
# both. Rows:
#   append:  log-append URL < events            kcat -P -b ADDR -t TOPIC < events
#            (a new topic of PARTITIONS partitions each run, made before the
#            clock starts; both acks=all; log-append idempotent with lz4,
#            its defaults; kcat with its defaults (no idempotence, no
#            compression), with lz4, and with enable.idempotence=true)
#   tail:    log-tail URL > /dev/null           kcat -C -b ADDR -t TOPIC -o beginning -e -q > /dev/null
#            (the same topic, filled once by log-append)
COUNT=${COUNT:-100000}
source "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}
PARTITIONS=${PARTITIONS:-1}
scripts/install-test-deps.sh >/dev/null
NISSHI=$(cat target/test-nisshi)
KCAT=$(cat target/test-kcat)

# The broker, from a scratch directory (nisshi reads a .env from its working
# directory), killed when the script ends.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
mkdir -p "$WORK/nisshi"
(cd "$WORK/nisshi" && exec "$NISSHI" broker --listener-url "tcp://$ADDR" --advertised-listener-url "tcp://$ADDR" \
  --storage-engine memory://nisshi/ --group-initial-rebalance-delay 0s >"$WORK/nisshi/log" 2>&1) &
BROKER=$!
trap 'kill "$BROKER" 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

# seconds COMMAND: wall-clock seconds of one run of a shell command, which
# must succeed.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  bash -o pipefail -c "$1" >/dev/null 2>"$WORK/kafka-bench.err" || { echo "failed: $1" >&2; cat "$WORK/kafka-bench.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", b - a}'
}
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# A fresh topic for each append run, made by log-append before timing.
n=0
fresh() { n=$((n + 1)); TOPIC=bench-$1-$n; "$BIN/log-append" "kafka://$ADDR/$TOPIC" --partitions "$PARTITIONS" </dev/null; }
# events_in TOPIC: how many events kcat finds in it (each run is checked).
events_in() { "$KCAT" -C -b "$ADDR" -t "$1" -o beginning -e -q -f '\n' | wc -l; }

declare -A TIMES
check() { # NAME TOPIC: the run appended every event
  local got; got=$(events_in "$2")
  [ "$got" -eq "$COUNT" ] || { echo "$1: $got events in $2, not $COUNT" >&2; exit 1; }
}
fresh fill; FILLED=$TOPIC
"$BIN/log-append" "kafka://$ADDR/$FILLED" < "$EVENTS"; check fill "$FILLED"
for _ in $(seq "$RUNS"); do
  fresh la; TIMES[log-append]+="$(seconds "'$BIN/log-append' 'kafka://$ADDR/$TOPIC' < '$EVENTS'") "; check log-append "$TOPIC"
  fresh kp; TIMES["kcat -P"]+="$(seconds "'$KCAT' -P -b '$ADDR' -t '$TOPIC' < '$EVENTS'") "; check "kcat -P" "$TOPIC"
  fresh kz; TIMES["kcat -P lz4"]+="$(seconds "'$KCAT' -P -b '$ADDR' -t '$TOPIC' -X compression.type=lz4 < '$EVENTS'") "; check "kcat -P lz4" "$TOPIC"
  fresh ki; TIMES["kcat -P idempotent"]+="$(seconds "'$KCAT' -P -b '$ADDR' -t '$TOPIC' -X enable.idempotence=true < '$EVENTS'") "; check "kcat -P idempotent" "$TOPIC"
  TIMES[log-tail]+="$(seconds "'$BIN/log-tail' 'kafka://$ADDR/$FILLED' > /dev/null") "
  TIMES["kcat -C -e"]+="$(seconds "'$KCAT' -C -b '$ADDR' -t '$FILLED' -o beginning -e -q > /dev/null") "
done
if [ "$PARTITIONS" -eq 1 ] && ! "$BIN/log-tail" "kafka://$ADDR/$FILLED" | cmp -s - "$EVENTS"; then
  echo "log-tail did not give back the events byte for byte" >&2; exit 1
fi

med() { printf '%s\n' ${TIMES[$1]} | median; }
row() { # NAME: median seconds and events/s
  local s; s=$(med "$1")
  awk -v n="$1" -v s="$s" -v c="$COUNT" -v b="$BYTES" 'BEGIN{printf "%-24s %8.2fs %10.0f events/s %7.1f MB/s\n", n, s, c/s, b/s/1e6}'
}
ratio() { awk -v a="$(med "$2")" -v b="$(med "$1")" -v t="$3" 'BEGIN{printf "  %-40s %.2f\n", t, a/b}'; }
echo "kafka: $COUNT events ($((BYTES / COUNT)) bytes each), $PARTITIONS partition(s), nisshi at $ADDR, median of $RUNS runs:"
for name in log-append "kcat -P" "kcat -P lz4" "kcat -P idempotent" log-tail "kcat -C -e"; do row "$name"; done
ratio log-append "kcat -P" "kcat -P / log-append:"
ratio log-append "kcat -P lz4" "kcat -P lz4 / log-append:"
ratio log-append "kcat -P idempotent" "kcat -P idempotent / log-append:"
ratio log-tail "kcat -C -e" "kcat -C -e / log-tail:"
