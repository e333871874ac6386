#!/usr/bin/env bash
# The book's chapter 6 ("Archiving events": resilience, reprocessing,
# refinement) and chapter 9 ("Analytics on read"): Nile's shopper events go
# into the log; `archive` writes them into a Hive-partitioned archive of
# zstd-compressed NDJSON (one table per schema, a directory per hour); then a
# batch job reads the archive as tables and answers a question in SQL, here
# with DuckDB: which products do shoppers look at but not put in their carts?
#
#   examples/ch6-archive-duckdb.sh
#
# Environment: EVENTS (generated events, default 50000), OUT (output folder,
# default ch6-out), UNILOG_BIN (folder of built binaries; default: build
# them), EVENTS_FILE (events to use instead of generating them), PYTHON (a
# python with duckdb; default the tests' venv, else python3).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out=${OUT:-ch6-out}
events=${EVENTS:-50000}
if [ -z "${UNILOG_BIN:-}" ]; then
  (cd "$repo" && cargo build --bins --examples)
  UNILOG_BIN="$repo/target/debug"
fi
export PATH="$UNILOG_BIN:$PATH"
python=${PYTHON:-$(cat "$repo/target/test-python" 2>/dev/null || echo python3)}
rm -rf "$out" && mkdir -p "$out"

echo "== $events Nile events into a 4-partition log"
if [ -n "${EVENTS_FILE:-}" ]; then
  cat "$EVENTS_FILE"
else
  "$UNILOG_BIN/nile-events" --count "$events" --seed 6
fi | log-append "$out/nile.log" --partitions 4 --key .data.shopper.id

echo "== archive: log-tail --with-position | archive (exactly-once file names)"
if log-tail "$out/nile.log" --with-position -n 1 | grep -q '"log":'; then
  log-tail "$out/nile.log" --with-position |
    archive --to "$out/archive" --format ndjson.zst --time .data.timestamp -v
else
  # A log-tail without source log ids in its positions: at-least-once.
  log-tail "$out/nile.log" | archive --to "$out/archive" --format ndjson.zst --time .data.timestamp -v
fi
archive --verify "$out/archive"
find "$out/archive" -name '*.ndjson.zst' | sort | head -4
echo "   …"

echo "== chapter 9: analytics on read, DuckDB over the archive's files"
ARCHIVE="$out/archive" "$python" - <<'PY'
import os
import duckdb

a = os.environ["ARCHIVE"]
table = lambda name: (
    f"read_ndjson('{a}/com.nile/{name}/jsonschema-1/*/*/*.ndjson.zst', hive_partitioning=true)"
)
con = duckdb.connect()
print("events per hour (dt and hr are Hive partition columns):")
for row in con.execute(f"""
    SELECT dt, hr, count(*) AS events
    FROM read_ndjson('{a}/com.nile/*/jsonschema-1/*/*/*.ndjson.zst',
                     hive_partitioning=true, union_by_name=true)
    GROUP BY ALL ORDER BY ALL""").fetchall():
    print("  ", *row)
print("products viewed but not put in carts (adds per 100 views, lowest first):")
for row in con.execute(f"""
    WITH views AS (
      SELECT data.product.name AS product, count(*) AS views
      FROM {table('shopper_viewed_product')} GROUP BY 1),
    adds AS (
      SELECT data.item.product.name AS product, count(*) AS adds
      FROM {table('shopper_added_to_cart')} GROUP BY 1)
    SELECT product, views, adds, round(100.0 * adds / views, 1) AS adds_per_100_views
    FROM views JOIN adds USING (product)
    ORDER BY adds_per_100_views, product""").fetchall():
    print("  ", *row)
PY
