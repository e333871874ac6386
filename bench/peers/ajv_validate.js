// Peer for bench/validate.sh: validate self-describing NDJSON events with ajv
// (draft 4 via ajv-draft-04 is not needed: the Iglu schemas use only keywords
// ajv's default draft shares), formats from ajv-formats. Same job as validate.
// Usage: node ajv_validate.js REGISTRY < events > good
const fs = require("fs");
const path = require("path");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const registry = process.argv[2];
const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
addFormats(ajv);
const cache = new Map();
let bad = 0;
const out = [];
let outLen = 0;
function flush() {
  if (out.length) { fs.writeSync(1, out.join("")); out.length = 0; outLen = 0; }
}
function handle(line) {
  if (!line) return;
  try {
    const event = JSON.parse(line);
    const uri = event.schema;
    let check = cache.get(uri);
    if (!check) {
      const [vendor, name, fmt, version] = uri.slice(5).split("/");
      const schema = JSON.parse(fs.readFileSync(path.join(registry, vendor, name, fmt, version), "utf8"));
      delete schema.self;
      delete schema.$schema;
      check = ajv.compile(schema);
      cache.set(uri, check);
    }
    if (check(event.data)) {
      out.push(line, "\n");
      outLen += line.length;
      if (outLen > 1 << 20) flush();
    } else bad++;
  } catch (e) { bad++; }
}
let rest = "";
const buf = Buffer.alloc(1 << 20);
for (;;) {
  let n;
  try { n = fs.readSync(0, buf, 0, buf.length, null); } catch (e) { if (e.code === "EAGAIN") continue; if (e.code === "EOF") break; throw e; }
  if (n === 0) break;
  const chunk = rest + buf.toString("utf8", 0, n);
  const lines = chunk.split("\n");
  rest = lines.pop();
  for (const l of lines) handle(l);
}
handle(rest);
flush();
process.stderr.write(`ajv: ${bad} failed\n`);
