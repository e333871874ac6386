#!/usr/bin/env python3
"""Builds tests/data/user-agents/corpus.ndjson: real user agents from two npm
packages, each with the answer of uap-python (uap-core's reference parser,
PyPI `ua-parser`) over the same rules enrich embeds (data/uap-core).

Not run by CI. To refresh (after updating data/uap-core):

    pip install ua-parser
    npm pack crawler-user-agents user-agents   # then untar each into DIR/NAME
    scripts/ua-corpus.py DIR > tests/data/user-agents/corpus.ndjson

Each line: {"ua":…,"source":…,"label":…,"expected":{…enrich --ua's data…}}
where `label` is the source's own classification: "bot" for every
crawler-user-agents instance, user-agents' deviceCategory otherwise.
"""
import json
import sys
from pathlib import Path

from ua_parser import Parser, loaders
from ua_parser.basic import Resolver

ROOT = Path(__file__).resolve().parent.parent


def version(*parts):
    out = []
    for p in parts:
        if p is None:
            break
        out.append(p)
    return ".".join(out) or None


def facts(parser, ua):
    r = parser.parse(ua)
    u, o, d = r.user_agent, r.os, r.device
    device_family = d.family if d else "Other"
    return {
        "browser_family": u.family if u else "Other",
        "browser_major": u.major if u else None,
        "browser_minor": u.minor if u else None,
        "browser_patch": u.patch if u else None,
        "browser_patch_minor": u.patch_minor if u else None,
        "browser_version": version(u.major, u.minor, u.patch, u.patch_minor) if u else None,
        "os_family": o.family if o else "Other",
        "os_major": o.major if o else None,
        "os_minor": o.minor if o else None,
        "os_patch": o.patch if o else None,
        "os_patch_minor": o.patch_minor if o else None,
        "os_version": version(o.major, o.minor, o.patch, o.patch_minor) if o else None,
        "device_family": device_family,
        "device_brand": d.brand if d else None,
        "device_model": d.model if d else None,
        "is_bot": device_family == "Spider",
    }


def main():
    src = Path(sys.argv[1])
    parser = Parser(Resolver(loaders.load_json(ROOT / "data/uap-core/regexes.json")))
    seen = set()
    rows = []
    crawlers = json.loads((src / "crawler-user-agents/package/crawler-user-agents.json").read_text())
    for entry in crawlers:
        for ua in entry.get("instances", []):
            if ua not in seen:
                seen.add(ua)
                rows.append((ua, "crawler-user-agents", "bot"))
    agents = json.loads((src / "user-agents/package/dist/user-agents.json").read_text())
    for entry in agents:
        ua = entry["userAgent"]
        if ua not in seen:
            seen.add(ua)
            rows.append((ua, "user-agents", entry.get("deviceCategory")))
    for ua, source, label in rows:
        line = {"ua": ua, "source": source, "label": label, "expected": facts(parser, ua)}
        print(json.dumps(line, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
