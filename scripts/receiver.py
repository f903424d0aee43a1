#!/usr/bin/env python3
"""A local stand-in for Slack, Teams, a generic webhook and PagerDuty in `make run`.

Listens on 127.0.0.1:PORT, answers every POST with 200 (PagerDuty's path with
202, as the Events API does) and appends one JSON line per request to FILE:
time, path, the headers a receiver checks (content type, signature), and the
body (parsed when it is JSON). Nothing leaves the machine.

    receiver.py PORT FILE
"""

import json
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Bodies above this are cut: the receiver is for looking at, not for storing.
MAX_BODY = 256 * 1024
KEPT_HEADERS = ("content-type", "x-blindspotx-signature", "x-blindspotx-timestamp", "user-agent")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: receiver.py PORT FILE")
    port, path = int(sys.argv[1]), sys.argv[2]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            entry = {
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "path": self.path,
                "headers": {
                    k.lower(): v
                    for k, v in self.headers.items()
                    if k.lower() in KEPT_HEADERS or k.lower().startswith("x-")
                },
                "body": body,
                # The bytes as sent, for checking the webhook's signature.
                "raw": raw.decode("utf-8", "replace"),
            }
            with lock, open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
            status = 202 if self.path.startswith("/pagerduty") else 200
            reply = b'{"status":"success"}' if status == 202 else b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
