#!/usr/bin/env bash
# window on 1M generated events beside jq (and jaq, when it is on PATH) in
# the same run: a count per shopper and minute (jq and jaq with reduce), a
# 30-minute session with three aggregates, -j 2, and peak memory with 10k
# and about 1M distinct keys open at once. Usage: bench/window.sh (COUNT=N)
source "$(dirname "$0")/common.sh"

W=$BIN/window
TIME=(--time .data.timestamp)
measure "window --tumbling 1m (count per key)" "$W" --tumbling 1m --key .data.shopper.id "${TIME[@]}" "$EVENTS"
measure "window -j 2 --tumbling 1m"           "$W" -j 2 --tumbling 1m --key .data.shopper.id "${TIME[@]}" "$EVENTS"
# The same count per key and minute, as jq programs people write.
REDUCE='reduce inputs as $e ({}; .[$e.data.shopper.id + " " + $e.data.timestamp[0:16]] += 1)'
# jq 1.6's reduce slows down as its object grows (10 minutes and more on
# 1M events here): it runs on a tenth of the events, which is named.
TENTH=$WORK/events-$((COUNT / 10)).ndjson
[ -s "$TENTH" ] || head -n $((COUNT / 10)) "$EVENTS" > "$TENTH"
measure "jq -n reduce $(jq --version), a tenth" jq -n -c "$REDUCE" "$TENTH"
if command -v jaq >/dev/null; then
  measure "jaq -n reduce $(jaq --version | cut -d' ' -f2)" jaq -n -c "$REDUCE" "$EVENTS"
else
  echo "(jaq is not on PATH: cargo install jaq --locked, then run again)"
fi
SESSION=(--session 30m --key .data.shopper.id "${TIME[@]}" --agg n=count
  --agg 'skus=count_distinct(.data.product.sku)' --agg 'last=last(.data.timestamp)')
measure "window --session 30m, 3 aggregates"  "$W" "${SESSION[@]}" "$EVENTS"
measure "window -j 2 --session 30m, 3 aggs"   "$W" -j 2 "${SESSION[@]}" "$EVENTS"
measure "window --tumbling 1m --state"        "$W" --tumbling 1m --key .data.shopper.id "${TIME[@]}" --state "$WORK/bench.state" "$EVENTS"
rm -f "$WORK/bench.state" "$WORK/bench.state.lock"

# Memory with many keys open at once: 10k shoppers in one day window, and
# a composite key (shopper, timestamp) that is nearly unique per event.
K10=$WORK/events-10k-keys.ndjson
[ -s "$K10" ] || "$BIN/nile-events" --count "$COUNT" --seed 42 --shoppers 10000 > "$K10"
measure "window 10k keys open (1d)"          "$W" --tumbling 1d --key .data.shopper.id "${TIME[@]}" "$K10"
measure "window ~1M keys open (1d)"          "$W" --tumbling 1d --key .data.shopper.id --key .data.timestamp "${TIME[@]}" "$EVENTS"
n=$("$W" --tumbling 1d --key .data.shopper.id --key .data.timestamp "${TIME[@]}" "$EVENTS" | wc -l)
echo "check: $n distinct keys in the last run"
n=$("$W" --tumbling 1m --key .data.shopper.id "${TIME[@]}" "$EVENTS" | jq -s 'map(.data.aggregates.count) | add')
echo "check: the per-minute counts add up to $n of $COUNT events"
