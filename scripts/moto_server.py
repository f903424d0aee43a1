#!/usr/bin/env python3
"""moto server (the local AWS) with every request serialized by one lock.

moto's own server is threaded and its conditional writes are not atomic
under concurrent requests (racing attribute_not_exists puts can both win),
so a concurrency test could fail because of the emulator. Here the whole
WSGI app runs under one lock, response body included: requests are still
accepted concurrently, but handled one at a time.

Usage: moto_server.py [--host 127.0.0.1] [--port 55000] [--verbose]
"""

import argparse
import logging
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerializedApp:
    """WSGI middleware: one request at a time through the wrapped app."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("MOTO_PORT", "55000"))
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()

    # moto builds some URLs (SQS queue URLs, ...) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(args.port)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    print(f"moto (serialized) on http://{args.host}:{args.port}", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
