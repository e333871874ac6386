#!/usr/bin/env python3
"""bench/alert.sh's peer for `alert --send http://`: Python's http.client
POSTs each alert command in FILE, as read, over one kept-alive connection,
with the headers alert sends (Content-Type, Idempotency-Key), and checks
each status. Usage: http_client_post.py HOST PORT PATH FILE"""
import http.client
import json
import sys


def main():
    host, port, path, file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    conn = http.client.HTTPConnection(host, port)
    sent = 0
    with open(file, "rb") as f:
        for line in f:
            body = line.rstrip(b"\n")
            key = json.loads(body)["data"]["command_id"]
            conn.request("POST", path, body=body, headers={
                "Content-Type": "application/json", "Idempotency-Key": key})
            resp = conn.getresponse()
            resp.read()
            if not 200 <= resp.status < 300:
                raise SystemExit("HTTP %d" % resp.status)
            sent += 1
    print(sent)


if __name__ == "__main__":
    sys.exit(main())
