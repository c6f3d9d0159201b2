"""Verifies captured webhook requests with the official Python `standardwebhooks` library.

Usage: .venv/bin/python verify_standard.py REQUESTS.jsonl

Each line of REQUESTS.jsonl is one request:
    {"name": "...", "headers": {"webhook-id": ..., "webhook-timestamp": ...,
     "webhook-signature": ...}, "body_b64": "<base64 of the exact body bytes>",
     "secret": "whsec_..."}
Each is verified with `Webhook(secret).verify(body, headers)` (which also enforces the
5-minute timestamp tolerance). Prints "ok <name>" or "FAIL <name>: <error>" per line; exits
1 if any line failed (or there was none), 0 otherwise.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


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
                body = base64.b64decode(req["body_b64"])
                Webhook(req["secret"]).verify(body, req["headers"])
                print(f"ok {name}")
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
    if total == 0:
        print("FAIL no request to verify")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
