"""The peer of `archive --format avro`: reads NDJSON events (with or without
the unilog position member) and writes the same generic envelope records
with fastavro, one container file, the codec given."""
import json
import sys

import fastavro

SCHEMA = fastavro.parse_schema(json.loads(open(sys.argv[1]).read()))
codec = sys.argv[2]
time_field = "timestamp"


def records():
    for line in sys.stdin.buffer:
        line = line.rstrip(b"\n")
        event = json.loads(line)
        pos = event.pop("unilog", None)
        rest = line
        if pos is not None:
            # The event without the member, as the archive stores it.
            rest = b"{" + line[line.index(b"},", 10) + 2:]
        data = event["data"]
        t = data.get(time_field)
        yield {
            "unilog": pos and {"log": pos["log"], "partition": pos["partition"],
                               "offset": pos["offset"], "sub": 0, "time": pos.get("time")},
            "time": pos["time"] if pos else 0,
            "schema": event["schema"],
            "event": rest.decode(),
        }


with open(sys.argv[3], "wb") as out:
    fastavro.writer(out, SCHEMA, records(), codec=codec)
