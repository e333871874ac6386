#!/usr/bin/env bash
# The book's abandoned carts (chapter 4) as a pipeline over the file log:
# generated Nile events into raw.log, then
#   log-tail raw.log --with-position --resume-from STATE | window ... --state STATE | log-append derived.log
# Run it again after killing any stage: derived.log ends up with each
# abandoned cart exactly once. Usage: examples/abandoned-carts/run.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
cargo build --release --quiet --bins --examples
PATH=$PWD/target/release:$PATH
out=${1:-demo-out/abandoned-carts}
mkdir -p "$out"
if [ ! -d "$out/raw.log" ]; then
  # 300,000 events are about 100 minutes of the store: sessions end both ways.
  target/release/nile-events --count 300000 --shoppers 2000 --seed 4 \
    | log-append "$out/raw.log" --key .data.shopper.id --partitions 4
fi
mapfile -t job < <(grep -v '^#' "$here/window.args" | grep -v '^$')
log-tail "$out/raw.log" --with-position --resume-from "$out/carts.state" \
  | window "${job[@]}" --state "$out/carts.state" --partitions 4 \
  | log-append "$out/derived.log"
log-tail "$out/derived.log" | head -2
echo "abandoned carts so far: $(log-tail "$out/derived.log" | wc -l) (windows still open stay in $out/carts.state)"
validate --registry examples/schemas < <(log-tail "$out/derived.log") > /dev/null && echo "all valid against examples/schemas"
