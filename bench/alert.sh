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

# ---- Sending: commands per second against local servers, beside Python's
# smtplib and http.client on the same server, in the same run. The servers
# are the tests' fixtures (aiosmtpd; http.server), recording without fsync;
# every client keeps one connection. Medians of RUNS runs, as ratios to the
# Python client. alert runs without and with --state (its journal fsyncs
# before and after each send: the price of exactly-once).
SEND_N=${SEND_N:-2000}
RUNS=${RUNS:-5}
PY=$(scripts/install-test-deps.sh --print-python 2>/dev/null | tail -1)
CMDS=$WORK/alert-commands-$SEND_N.ndjson
head -n "$SEND_N" "$EVENTS" | "$alert" --when true --summary 'Alert on {{.data.shopper.id}}' \
  --detail 'Shopper {{.data.shopper.name}}' --recipient 'Ops <ops@example.com>' > "$CMDS"
start_server() { # FIXTURE: starts it in the background, sets SERVER_PID and PORT
  coproc SERVER { exec "$PY" "tests/fixtures/$1" --no-fsync --out "$WORK/bench-$1.out"; }
  SERVER_PID=$SERVER_PID
  read -r PORT <&"${SERVER[0]}"
}
# rate NAME COMMAND... : median commands per second over RUNS runs.
rate() {
  local name=$1; shift
  local times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/alert-send-state"
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "$name failed" >&2; return 1; }; t1=$(date +%s.%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  done
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  awk -v n="$name" -v s="$med" -v c="$SEND_N" 'BEGIN{printf "%-44s %10.0f/s %8.2fs\n", n, c/s, s}'
  RATE=$(awk -v s="$med" -v c="$SEND_N" 'BEGIN{print c/s}')
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "  ratio alert/python: %.2f\n", a/b}'; }
echo "sending $SEND_N commands ($(($(stat -c %s "$CMDS") / SEND_N)) bytes each), median of $RUNS runs:"
start_server smtp_server.py
rate "smtplib (one connection)" "$PY" bench/peers/smtplib_send.py 127.0.0.1 "$PORT" alerts@example.com "$CMDS"; py=$RATE
rate "alert --send smtp://" "$alert" --send "smtp://127.0.0.1:$PORT" --smtp-tls none --from alerts@example.com "$CMDS"; ratio "$RATE" "$py"
rate "alert --send smtp:// --state (journal)" "$alert" --send "smtp://127.0.0.1:$PORT" --smtp-tls none --from alerts@example.com --state "$WORK/alert-send-state" "$CMDS"; ratio "$RATE" "$py"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server webhook_server.py
rate "http.client (keep-alive)" "$PY" bench/peers/http_client_post.py 127.0.0.1 "$PORT" /hooks "$CMDS"; py=$RATE
rate "alert --send http://" "$alert" --send "http://127.0.0.1:$PORT/hooks" "$CMDS"; ratio "$RATE" "$py"
rate "alert --send http:// --state (journal)" "$alert" --send "http://127.0.0.1:$PORT/hooks" --state "$WORK/alert-send-state" "$CMDS"; ratio "$RATE" "$py"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
