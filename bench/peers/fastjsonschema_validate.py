"""Peer for bench/validate.sh: validate self-describing NDJSON events with
fastjsonschema, doing validate's job (dispatch on the schema URI, schemas from
an Iglu static registry compiled once, good lines out, failures counted).
Usage: python3 fastjsonschema_validate.py REGISTRY < events > good"""
import json
import sys

import fastjsonschema

registry = sys.argv[1]
cache = {}
bad = 0
out = sys.stdout
for line in sys.stdin:
    try:
        event = json.loads(line)
        uri = event["schema"]
        check = cache.get(uri)
        if check is None:
            vendor, name, fmt, version = uri[len("iglu:"):].split("/")
            with open(f"{registry}/{vendor}/{name}/{fmt}/{version}") as f:
                schema = json.load(f)
            schema.pop("self", None)
            schema["$schema"] = "http://json-schema.org/draft-04/schema#"
            check = cache[uri] = fastjsonschema.compile(schema)
        check(event["data"])
        out.write(line)
    except Exception:
        bad += 1
print(f"fastjsonschema: {bad} failed", file=sys.stderr)
