#!/usr/bin/env bash
# alert's rule evaluation on generated events, beside the same selection in
# jq, in the same run. Usage: bench/alert.sh   (COUNT=N to change the size)
#
# Rows: a rare condition (0.3% of events alert, as alerts are), a common one
# (15% alert: each alert is a command made from the event), the common one
# with --no-prefilter (every event built and judged by jaq), a condition only
# jq can judge (a regex), four rules at once, and jq's select with the same
# conditions. Simple conditions are judged from the bytes by the prefilter.
source "$(dirname "$0")/common.sh"

RARE='.data.order.value > 5000'
SIMPLE='.data.product.price > 800'
REGEX='.data.shopper.name | test("^Zar")'
RULES=$WORK/alert-rules.json
cat > "$RULES" <<'JSON'
{"rules":[
 {"id":"pricey","when":".data.product.price > 800","summary":"{{.data.product.name}} viewed by {{.data.shopper.id}}"},
 {"id":"big-order","when":".schema == \"iglu:com.nile/shopper_placed_order/jsonschema/1-0-0\" and .data.order.value > 2000","summary":"order of {{.data.order.value}}"},
 {"id":"vip","when":".data.shopper.id == \"1001\"","summary":"vip","throttle":"1h","per":".data.shopper.id"},
 {"id":"lego","when":".data.product.sku == \"lego-877\" and .data.shopper.name == \"Li\"","summary":"lego"}
]}
JSON
alert=$BIN/alert
echo "alerts raised: rare $("$alert" --when "$RARE" --summary s "$EVENTS" | wc -l), simple $("$alert" --when "$SIMPLE" --summary s "$EVENTS" | wc -l)," \
  "jq $(jq -c "select($SIMPLE)" "$EVENTS" | wc -l); 4 rules $("$alert" --rule "$RULES" "$EVENTS" | wc -l)" >&2
measure "alert --when (rare)"            "$alert" --when "$RARE" --summary s "$EVENTS"
measure "alert --when (simple)"          "$alert" --when "$SIMPLE" --summary s "$EVENTS"
measure "alert --when --no-prefilter"    "$alert" --when "$SIMPLE" --summary s --no-prefilter "$EVENTS"
measure "alert --when (regex, jq only)"  "$alert" --when "$REGEX" --summary s "$EVENTS"
measure "alert --rule (4 rules)"         "$alert" --rule "$RULES" "$EVENTS"
if command -v jq >/dev/null; then
  measure "jq -c 'select(rare)'"         jq -c "select($RARE)" "$EVENTS"
  measure "jq -c 'select(simple)'"       jq -c "select($SIMPLE)" "$EVENTS"
  measure "jq -c 'select(regex)'"        jq -c "select($REGEX)" "$EVENTS"
fi
