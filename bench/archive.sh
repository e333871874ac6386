#!/usr/bin/env bash
# archive on 1M generated Nile events with positions (as log-tail
# --with-position gives them), beside its peers in the same run: Python's
# fastavro writing the same Avro records with the same codec, and the zstd
# command compressing the same bytes. Then replay, and the memory of a run
# over a tenth of the events (it must stay flat).
# Usage: bench/archive.sh   (COUNT=N to change size)
source "$(dirname "$0")/common.sh"

PEERS=$PWD/bench/peers
POS=$WORK/events-pos-$COUNT.ndjson
if [ ! -s "$POS" ]; then
  # Three partitions, dense offsets, append times 10 ms apart.
  awk 'BEGIN{srand(1)} {p = NR % 3; printf "{\"unilog\":{\"log\":\"6f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b\",\"partition\":%d,\"offset\":%d,\"time\":%d},%s\n", p, o[p]++, 1764230400000 + NR * 10, substr($0, 2)}' "$EVENTS" > "$POS"
fi
EVENTS=$POS BYTES=$(stat -c %s "$POS")
ARCH=$WORK/archive-out
clean="rm -rf '$ARCH'"

BEFORE=$clean measure "archive avro deflate"        sh -c "'$BIN/archive' --to '$ARCH' --codec deflate '$EVENTS'"
BEFORE=$clean measure "archive avro zstd"           sh -c "'$BIN/archive' --to '$ARCH' --codec zstd '$EVENTS'"
BEFORE=$clean measure "archive avro snappy"         sh -c "'$BIN/archive' --to '$ARCH' --codec snappy '$EVENTS'"
BEFORE=$clean measure "archive ndjson.zst"          sh -c "'$BIN/archive' --to '$ARCH' --format ndjson.zst '$EVENTS'"
BEFORE=$clean measure "archive ndjson.gz"           sh -c "'$BIN/archive' --to '$ARCH' --format ndjson.gz '$EVENTS'"
measure "zstd (the command, level 3)"               sh -c "zstd -q -3 -c '$EVENTS' > /dev/null"

# Replay: an archive of each kind, read back whole.
rm -rf "$ARCH"; "$BIN/archive" --to "$ARCH" --format ndjson.zst "$EVENTS"
measure "replay ndjson.zst"                          sh -c "'$BIN/archive' --replay '$ARCH' > /dev/null"
"$BIN/archive" --replay "$ARCH" --with-position | cmp -s - "$EVENTS" || echo "(replay --with-position differs from the input order: partitions interleave by time)"
rm -rf "$ARCH"; "$BIN/archive" --to "$ARCH" --codec deflate "$EVENTS"
measure "replay avro deflate"                        sh -c "'$BIN/archive' --replay '$ARCH' > /dev/null"

# fastavro, the same records, the same codecs.
if [ ! -x "$WORK/venv/bin/python" ] || ! "$WORK/venv/bin/python" -c "import fastavro, zstandard" 2>/dev/null; then
  python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q fastavro zstandard >/dev/null 2>&1 || true
fi
if "$WORK/venv/bin/python" -c "import fastavro" 2>/dev/null; then
  SCHEMA=$WORK/generic.avsc
  # The schema every generic archive file carries in its header.
  f=$(find "$ARCH" -name '*.avro' | head -1)
  "$WORK/venv/bin/python" -c "import fastavro,json,sys; r=fastavro.reader(open(sys.argv[1],'rb')); json.dump(r.writer_schema, open(sys.argv[2],'w'))" "$f" "$SCHEMA"
  measure "python fastavro deflate"                  sh -c "'$WORK/venv/bin/python' '$PEERS/fastavro_archive.py' '$SCHEMA' deflate '$WORK/fastavro.avro' < '$EVENTS'"
  "$WORK/venv/bin/python" -c "import zstandard" 2>/dev/null &&
    measure "python fastavro zstandard"              sh -c "'$WORK/venv/bin/python' '$PEERS/fastavro_archive.py' '$SCHEMA' zstandard '$WORK/fastavro.avro' < '$EVENTS'"
else
  echo "(fastavro skipped: pip install failed)"
fi

# Memory stays flat: the peak for a tenth of the events is the same.
SMALL=$WORK/events-pos-small.ndjson
head -n $((COUNT / 10)) "$EVENTS" > "$SMALL"
COUNT=$((COUNT / 10)) BYTES=$(stat -c %s "$SMALL")
BEFORE=$clean measure "archive avro deflate, a tenth"   sh -c "'$BIN/archive' --to '$ARCH' --codec deflate '$SMALL'"
rm -rf "$ARCH"
