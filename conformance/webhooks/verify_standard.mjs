// Verifies captured webhook requests with the official npm `standardwebhooks` library.
//
// Usage: node verify_standard.mjs REQUESTS.jsonl
//
// Each line of REQUESTS.jsonl is one request: {"name", "headers": {"webhook-id",
// "webhook-timestamp", "webhook-signature"}, "body_b64": base64 of the exact body bytes,
// "secret": "whsec_..."}. Each is verified with `new Webhook(secret).verify(body, headers)`
// (which also enforces the 5-minute timestamp tolerance), the body given as the raw bytes
// (a Buffer). Prints "ok <name>" or "FAIL <name>: <error>" per line; exits 1 if any line
// failed (or there was none), 0 otherwise.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const path = process.argv[2];
if (!path) {
  console.error("usage: node verify_standard.mjs REQUESTS.jsonl");
  process.exit(2);
}

let failed = 0;
let total = 0;
readFileSync(path, "utf8")
  .split("\n")
  .forEach((line, i) => {
    if (!line.trim()) return;
    total += 1;
    const req = JSON.parse(line);
    const name = req.name ?? `line ${i + 1}`;
    try {
      const body = Buffer.from(req.body_b64, "base64");
      new Webhook(req.secret).verify(body, req.headers);
      console.log(`ok ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}: ${e?.name ?? "Error"}: ${e?.message ?? e}`);
    }
  });
if (total === 0) {
  console.log("FAIL no request to verify");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
