"""Verifies captured webhook requests signed in Infrahub's way (infrastream's Infrahub-compat
scheme), with Infrahub's documented algorithm, independently of infrastream's code.

Usage: python3 verify_infrahub.py REQUESTS.jsonl

Each line of REQUESTS.jsonl: {"name", "headers": {"webhook-id", "webhook-timestamp",
"webhook-signature"}, "body_b64": base64 of the exact body bytes, "secret": the raw
shared_key}.

The algorithm, from opsmill/infrahub:
- the receiver Infrahub documents (docs/docs/media/fastapi_webhook_receiver.txt,
  `verify_signature`, shown in docs/docs/topics/webhooks.mdx): base64 of
  HMAC-SHA256(key = the shared key's bytes, msg = f"{webhook-id}.{webhook-timestamp}.{body}"),
  where body is the request body as received, compared with `hmac.compare_digest` to
  "v1,<that>";
- the sender (backend/infrahub/webhook/models.py, `Webhook._assign_headers` and `_sign`):
  the same HMAC with key = shared_key.encode(), over
  f"{message_id}.{timestamp}.{json.dumps(payload, separators=(',', ':'))}" — so a request is
  only what Infrahub itself would have signed if the signature also matches that form of the
  parsed body.
Both must hold for a line to pass; the timestamp must also be within 5 minutes of now (the
Standard Webhooks recommendation; Infrahub's example does not check it). Prints "ok <name>" or
"FAIL <name>: <reason>" per line; exits 1 if any line failed (or there was none).
"""

import base64
import hashlib
import hmac
import json
import sys
import time


def expected(key: bytes, message_id: str, timestamp: str, payload: str) -> str:
    data = f"{message_id}.{timestamp}.{payload}".encode()
    return "v1," + base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode("utf-8")


def check(req: dict) -> None:
    headers = {k.lower(): v for k, v in req["headers"].items()}
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    received = headers.get("webhook-signature")
    if not (message_id and timestamp and received):
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs(time.time() - int(timestamp)) > 300:
        raise ValueError(f"timestamp {timestamp} is more than 5 minutes from now")
    key = req["secret"].encode()
    body = base64.b64decode(req["body_b64"])
    payload_json = body.decode()
    # The documented receiver: the raw body.
    if not hmac.compare_digest(expected(key, message_id, timestamp, payload_json), received):
        raise ValueError("signature does not match the body (Infrahub's documented receiver)")
    # Infrahub's sender: json.dumps of the payload, compact.
    resigned = json.dumps(json.loads(payload_json), separators=(",", ":"))
    if not hmac.compare_digest(expected(key, message_id, timestamp, resigned), received):
        raise ValueError("signature is not what Infrahub's _assign_headers computes for this payload")


def main(path: str) -> int:
    failed = 0
    total = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            total += 1
            req = json.loads(line)
            name = req.get("name", f"line {lineno}")
            try:
                check(req)
                print(f"ok {name}")
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failed += 1
                print(f"FAIL {name}: {e}")
    if total == 0:
        print("FAIL no request to verify")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
