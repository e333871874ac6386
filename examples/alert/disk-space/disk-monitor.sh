#!/usr/bin/env bash
# The disk-space monitor: samples `df` every INTERVAL seconds as
# self-describing events and alerts when a file system runs low, at most once
# an hour per host and mount point, through one executor that sends each
# alert once (its journal survives restarts).
#
#   SEND=smtp://mail.example.com:587 FROM=alerts@example.com examples/alert/disk-space/disk-monitor.sh
#   ONCE=1 examples/alert/disk-space/disk-monitor.sh      # one sample, alerts printed
#
# DF=FILE reads a saved `df -P -k` output instead (for tests and demos).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
interval=${INTERVAL:-60}
state=${STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/unilog/disk-monitor}
send=${SEND:-exec:$here/../print-alert}
host=${HOST_NAME:-$(hostname)}

sample() {
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  if [ -n "${DF:-}" ]; then cat "$DF"; else df -P -k; fi |
    awk -v host="$host" -v now="$now" -v q='"' 'NR > 1 && $2 > 0 {
      free = 100 - substr($5, 1, length($5) - 1)
      printf "{%sschema%s:%siglu:io.unilog.examples/disk_space/jsonschema/1-0-0%s,%sdata%s:{", q,q,q,q,q,q
      printf "%shost%s:%s%s%s,%sfilesystem%s:%s%s%s,%smount%s:%s%s%s,", q,q,q,host,q, q,q,q,$1,q, q,q,q,$6,q
      printf "%ssize_kb%s:%d,%savailable_kb%s:%d,%sfree_percent%s:%d,%stimestamp%s:%s%s%s}}\n", q,q,$2, q,q,$4, q,q,free, q,q,q,now,q
    }'
}

{
  sample
  while [ -z "${ONCE:-}" ]; do sleep "$interval"; sample; done
} | alert --rule "$here/rules.json" --throttle 1h --per '.data.host + ":" + .data.mount' --line-buffered \
  | alert --send "$send" ${FROM:+--from "$FROM"} ${SMTP_TLS:+--smtp-tls "$SMTP_TLS"} --state "$state" --line-buffered
