#!/usr/bin/env bash
# archive on 1M generated Nile events with positions (as log-tail
# --with-position gives them), beside its peers in the same run: Python's
# fastavro writing the same Avro records with the same codec, and the zstd
# command compressing the same bytes. Then replay, and the peak memory of a
# run over a tenth of the events (it must stay flat).
# Every command runs RUNS times, interleaved round-robin so that a busy
# machine slows them all alike; the table gives medians, then the ratios.
# Usage: bench/archive.sh   (COUNT=N to change size, RUNS=N, PYTHON=a python with fastavro)
BENCH_BUILD="--bin archive --bin nile-events"
source "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}

PEERS=$PWD/bench/peers
POS=$WORK/events-pos-$COUNT.ndjson
if [ ! -s "$POS" ]; then
  # Three partitions, dense offsets, append times 10 ms apart from
  # 2026-11-27T09:00Z (%.0f: mawk's %d stops at 2^31).
  awk '{p = NR % 3; printf "{\"unilog\":{\"log\":\"6f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b\",\"partition\":%d,\"offset\":%d,\"time\":%.0f},%s\n", p, o[p]++, 1795770000000 + NR * 10, substr($0, 2)}' "$EVENTS" > "$POS"
fi
BYTES=$(stat -c %s "$POS")
SMALL=$WORK/events-pos-$((COUNT / 10)).ndjson
[ -s "$SMALL" ] || head -n $((COUNT / 10)) "$POS" > "$SMALL"
ARCH=$WORK/archive-out
A="'$BIN/archive'"

# Archives to replay, made once.
rm -rf "$WORK/replay-zst" "$WORK/replay-avro"
"$BIN/archive" --to "$WORK/replay-zst" --format ndjson.zst "$POS"
"$BIN/archive" --to "$WORK/replay-avro" --codec deflate "$POS"
"$BIN/archive" --replay "$WORK/replay-zst" --with-position | cmp -s - "$POS" ||
  { echo "replay --with-position differs from the input" >&2; exit 1; }
"$BIN/archive" --replay "$WORK/replay-avro" --with-position | cmp -s - "$POS" ||
  { echo "replay --with-position of the Avro archive differs from the input" >&2; exit 1; }

# fastavro, the same records, the same codecs.
PY=${PYTHON:-$WORK/venv/bin/python}
if ! "$PY" -c "import fastavro, zstandard" 2>/dev/null; then
  PY=$WORK/venv/bin/python
  python3 -m venv "$WORK/venv" && "$PY" -m pip install -q fastavro zstandard >/dev/null 2>&1 || true
fi
SCHEMA=$WORK/generic.avsc
f=$(find "$WORK/replay-avro" -name '*.avro' -print -quit)
"$PY" -c "import fastavro,json,sys; r=fastavro.reader(open(sys.argv[1],'rb')); json.dump(r.writer_schema, open(sys.argv[2],'w'))" "$f" "$SCHEMA" 2>/dev/null || PY=

# NAME|EVENTS FILE|COMMAND, in the order of the table.
ROWS=(
  "archive avro deflate|$POS|$A --to '$ARCH' --codec deflate '$POS'"
  "archive avro zstd|$POS|$A --to '$ARCH' --codec zstd '$POS'"
  "archive avro snappy|$POS|$A --to '$ARCH' --codec snappy '$POS'"
  "archive ndjson.zst|$POS|$A --to '$ARCH' --format ndjson.zst '$POS'"
  "archive ndjson.gz|$POS|$A --to '$ARCH' --format ndjson.gz '$POS'"
  "zstd -3 (the command)|$POS|zstd -q -3 -c '$POS' > /dev/null"
  "replay ndjson.zst|$POS|$A --replay '$WORK/replay-zst' > /dev/null"
  "replay avro deflate|$POS|$A --replay '$WORK/replay-avro' > /dev/null"
  "archive avro deflate, a tenth|$SMALL|$A --to '$ARCH' --codec deflate '$SMALL'"
  "archive ndjson.zst, a tenth|$SMALL|$A --to '$ARCH' --format ndjson.zst '$SMALL'"
)
if [ -n "$PY" ]; then
  ROWS+=("python fastavro deflate|$POS|'$PY' '$PEERS/fastavro_archive.py' '$SCHEMA' deflate '$WORK/fastavro.avro' < '$POS'")
  ROWS+=("python fastavro zstandard|$POS|'$PY' '$PEERS/fastavro_archive.py' '$SCHEMA' zstandard '$WORK/fastavro.avro' < '$POS'")
else
  echo "(fastavro skipped: no python with fastavro; set PYTHON)"
fi

declare -A SECS PEAK
for _ in $(seq "$RUNS"); do
  for row in "${ROWS[@]}"; do
    name=${row%%|*} cmd=${row#*|*|}
    rm -rf "$ARCH"
    /usr/bin/time -o "$WORK/time.txt" -f '%e %M' sh -c "$cmd" >/dev/null 2>&1 ||
      { echo "failed: $cmd" >&2; exit 1; }
    read -r s m < "$WORK/time.txt"
    SECS[$name]+="$s " PEAK[$name]+="$m "
  done
done
rm -rf "$ARCH"

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A RATE MEM
echo
printf '%-34s %10s %12s %8s %9s\n' "$COUNT events of $((BYTES / COUNT)) bytes, $RUNS runs" "median s" "events/s" "MB/s" "peak MiB"
for row in "${ROWS[@]}"; do
  name=${row%%|*} file=${row#*|}; file=${file%%|*}
  n=$(wc -l < "$file") b=$(stat -c %s "$file")
  s=$(median <<<"${SECS[$name]}") m=$(median <<<"${PEAK[$name]}")
  RATE[$name]=$(awk -v n="$n" -v s="$s" 'BEGIN{if (s < 0.005) s = 0.005; printf "%.0f", n/s}')
  MEM[$name]=$(awk -v m="$m" 'BEGIN{printf "%.1f", m/1024}')
  printf '%-34s %10.2f %12s %8.0f %9s\n' "$name" "$s" "${RATE[$name]}" "$(awk -v b="$b" -v s="$s" 'BEGIN{print b/s/1e6}')" "${MEM[$name]}"
done

# ratio A B WHAT TARGET: A's rate over B's, and whether it reaches TARGET.
ratio() {
  awk -v a="${RATE[$1]}" -v b="${RATE[$2]}" -v t="$3" -v want="$4" 'BEGIN{
    r = a / b; printf "  %-52s %6.2f  (target %s: %s)\n", t, r, want, (want == "-" || r >= want + 0) ? "met" : "MISSED" }'
}
# rate NAME TARGET
rate() {
  awk -v a="${RATE[$1]}" -v t="$1" -v want="$2" 'BEGIN{
    printf "  %-52s %6.0fk  (target %dk: %s)\n", t " events/s", a / 1000, want / 1000, (a >= want) ? "met" : "MISSED" }'
}
echo
rate "archive avro deflate" 240000
rate "archive avro zstd" 240000
rate "archive ndjson.zst" 600000
rate "replay ndjson.zst" 1000000
rate "replay avro deflate" 1000000
if [ -n "$PY" ]; then
  ratio "archive avro deflate" "python fastavro deflate" "archive avro deflate / fastavro deflate" 3
  ratio "archive avro zstd" "python fastavro zstandard" "archive avro zstd / fastavro zstandard" 3
fi
ratio "archive ndjson.zst" "zstd -3 (the command)" "archive ndjson.zst / the zstd command" -
awk -v a="${MEM[archive avro deflate]}" -v b="${MEM[archive avro deflate, a tenth]}" \
    -v c="${MEM[archive ndjson.zst]}" -v d="${MEM[archive ndjson.zst, a tenth]}" 'BEGIN{
  printf "  %-52s %6.2f\n  %-52s %6.2f\n", "peak memory, all events / a tenth (avro deflate)", a / b,
         "peak memory, all events / a tenth (ndjson.zst)", c / d }'
