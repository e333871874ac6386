"""Peer for bench/validate.sh: check-jsonschema, which validates files, not
streams. Splits the events into one data file each, grouped by schema, and
runs check-jsonschema once per schema (its fastest use).
Usage: python3 check_jsonschema_validate.py REGISTRY WORKDIR CHECK_JSONSCHEMA < events"""
import json
import os
import subprocess
import sys

registry, work, tool = sys.argv[1:4]
groups = {}
for i, line in enumerate(sys.stdin):
    event = json.loads(line)
    d = os.path.join(work, event["schema"].replace("/", "_").replace(":", "_"))
    groups.setdefault(event["schema"], [])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"{i}.json")
    with open(p, "w") as f:
        json.dump(event["data"], f)
    groups[event["schema"]].append(p)
failed = 0
for uri, files in groups.items():
    vendor, name, fmt, version = uri[len("iglu:"):].split("/")
    with open(f"{registry}/{vendor}/{name}/{fmt}/{version}") as f:
        schema = json.load(f)
    schema.pop("self", None)
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    sp = os.path.join(work, f"{name}.schema.json")
    with open(sp, "w") as f:
        json.dump(schema, f)
    r = subprocess.run([tool, "--schemafile", sp, *files], capture_output=True)
    failed += r.returncode != 0
print(f"check-jsonschema: {failed} schema groups failed", file=sys.stderr)
