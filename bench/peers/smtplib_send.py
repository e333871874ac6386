#!/usr/bin/env python3
"""bench/alert.sh's peer for `alert --send smtp://`: Python's smtplib sends
one plain-text mail per alert command in FILE over one kept connection, as
alert does, with the same headers (From, To, Subject, Message-ID, MIME,
quoted-printable body). Usage: smtplib_send.py HOST PORT FROM FILE"""
import email.policy
import json
import smtplib
import sys
from email.message import EmailMessage


def main():
    host, port, sender, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sent = 0
    with smtplib.SMTP(host, port) as smtp, open(path, encoding="utf-8") as f:
        for line in f:
            cmd = json.loads(line)["data"]
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"] = sender
            msg["To"] = cmd["recipient"]["email"]
            msg["Subject"] = cmd["notification"]["summary"]
            msg["Message-ID"] = "<%s@unilog.alert>" % cmd["command_id"]
            msg.set_content(cmd["notification"].get("detail", "") + "\n", cte="quoted-printable")
            smtp.send_message(msg)
            sent += 1
    print(sent)


if __name__ == "__main__":
    sys.exit(main())
