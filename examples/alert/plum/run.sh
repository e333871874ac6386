#!/usr/bin/env bash
# The book's chapter 8: Plum's NCX-10 machines send health checks; a rule
# turns the worrying ones into alert commands; an executor emails them once.
#
#   examples/alert/plum/run.sh                       # print the emails' gist
#   SMTP_URL=smtp://127.0.0.1:2525 SMTP_TLS=none examples/alert/plum/run.sh
#
# The alert binary is taken from PATH (cargo build puts it in target/debug).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$(mktemp -d)}

# 1. Decide: health checks in, alert commands out (kept, as a log would).
alert --rule "$here/rules.json" "$here/health-checks.ndjson" > "$work/commands.ndjson"
echo "plum: $(wc -l < "$work/commands.ndjson") alert commands from $(wc -l < "$here/health-checks.ndjson") health checks" >&2

# 2. Execute, once each: by email when an SMTP server is given, else through
#    a small program that prints what would be sent.
if [ -n "${SMTP_URL:-}" ]; then
  alert --send "$SMTP_URL" --from "Plum alerts <alerts@plum.example>" \
    --smtp-tls "${SMTP_TLS:-starttls}" --state "$work/state" < "$work/commands.ndjson"
else
  alert --send "exec:$here/../print-alert" --state "$work/state" < "$work/commands.ndjson"
fi
