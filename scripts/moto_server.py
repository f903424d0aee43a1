#!/usr/bin/env python3
"""moto server (the local AWS) with every request serialized by one lock.

moto's own server is threaded and its conditional writes are not atomic
under concurrent requests (racing attribute_not_exists puts can both win),
so a concurrency test could fail because of the emulator. Here the whole
WSGI app runs under one lock, response body included: requests are still
accepted concurrently, but handled one at a time (an SQS long poll waits
outside the lock: see `SerializedApp`).

It also removes moto 5.2.1's costs that grow with the table, so the load
test (`ops load`) measures the bundle, not the emulator: TransactWriteItems
deep-copied the whole table once per item to roll it back on failure (a
100-item transaction took about 0.5 s on a table of a few thousand items),
every Query sorted the whole table, every request listed moto's package
directory, and each condition was parsed once per use (`speed_up_moto`).
Connections are kept alive (HTTP/1.1).

Usage: moto_server.py [--host 127.0.0.1] [--port 55000] [--verbose]
"""

import argparse
import copy
import io
import json
import logging
import os
import signal
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import WSGIRequestHandler, run_simple

log = logging.getLogger("moto_server")


class SerializedApp:
    """WSGI middleware: one request at a time through the wrapped app.

    SQS long polls (JSON protocol, `WaitTimeSeconds` > 0) are the exception:
    held under the lock, each would stall every other client for its whole
    wait (the load test's queue reader made every DynamoDB request wait up
    to a second). They are run as short polls under the lock, repeated
    outside it until a message arrives or the wait is over, which is what a
    long poll means to its caller.
    """

    POLL_INTERVAL_S = 0.02

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        wait_s, short_poll = long_poll(environ)
        if not wait_s:
            status, headers, body = self.serialized(environ)
            start_response(status, headers)
            return [body]
        deadline = time.monotonic() + wait_s
        while True:
            status, headers, body = self.serialized(with_body(environ, short_poll))
            if not status.startswith("200") or has_messages(body):
                break
            if time.monotonic() + self.POLL_INTERVAL_S >= deadline:
                break
            time.sleep(self.POLL_INTERVAL_S)
        start_response(status, headers)
        return [body]

    def serialized(self, environ):
        response = {}
        written = []

        def capture(status, headers, exc_info=None):
            response["status"], response["headers"] = status, headers
            return written.append

        with self.lock:
            result = self.app(environ, capture)
            try:
                body = b"".join(written) + b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return response["status"], response["headers"], body


def long_poll(environ):
    """`(seconds, short-poll body)` for an SQS JSON long poll, else `(0, None)`.

    Reads the body of ReceiveMessage requests only (and puts it back).
    """
    if environ.get("HTTP_X_AMZ_TARGET") != "AmazonSQS.ReceiveMessage":
        return 0, None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    with_body(environ, raw)
    try:
        request = json.loads(raw or b"{}")
        wait_s = int(request.get("WaitTimeSeconds") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0, None  # moto answers the malformed request itself
    if wait_s <= 0:
        return 0, None
    request["WaitTimeSeconds"] = 0
    return min(wait_s, 20), json.dumps(request).encode()


def with_body(environ, body):
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def has_messages(body):
    try:
        return bool(json.loads(body or b"{}").get("Messages"))
    except (ValueError, AttributeError):
        return True  # not a message list: hand it to the caller as it is


class _TablesAreNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend.

    The backend's only deep copies are the per-transaction table backup and
    the item copy of update_item; the first becomes the table itself (no
    copy), the second stays a real copy. The rollback the backup served is
    done per item by `patch_transaction_snapshots`.
    """

    def __init__(self, table_type):
        self.table_type = table_type

    def deepcopy(self, value, memo=None):
        if isinstance(value, self.table_type):
            return value
        return copy.deepcopy(value, memo)


def patch_transaction_snapshots() -> bool:
    """Snapshots only the items a transaction touches, restores them on failure.

    Same observable behaviour as moto's whole-table backup: every item the
    transaction names is saved before it runs; if it raises (a cancelled
    transaction, a validation error), those items are put back as they were
    (restored in reverse order, so a key named twice ends in its first
    state) and the error propagates. Returns False, leaving moto as it is
    (slow but correct), when moto's internals are not the ones this was
    written against.
    """
    try:
        import moto.dynamodb.models as models
        from moto.dynamodb.models.table import Table
    except ImportError:
        return False
    backend = getattr(models, "DynamoDBBackend", None)
    original = getattr(backend, "transact_write_items", None)
    if (
        original is None
        or getattr(models, "copy", None) is not copy
        or not hasattr(backend, "get_keys_value")
    ):
        return False
    models.copy = _TablesAreNotCopied(Table)

    def snapshot(self, transact_items):
        saved = []
        for entry in transact_items if isinstance(transact_items, list) else []:
            try:
                op = next(iter(entry.values()))
                table = self.tables[op["TableName"]]
                keys = op["Item"] if "Item" in op else op["Key"]
                hash_key, range_key = self.get_keys_value(table, keys)
                item = table.get_item(hash_key, range_key)
            except Exception:  # noqa: BLE001 - moto itself reports the bad entry
                continue
            saved.append((table, hash_key, range_key, copy.deepcopy(item)))
        return saved

    def restore(saved):
        for table, hash_key, range_key, item in reversed(saved):
            if table.has_range_key:
                partition = table.items[hash_key]
                if item is None:
                    partition.pop(range_key, None)
                else:
                    partition[range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item

    def transact_write_items(self, transact_items):
        saved = snapshot(self, transact_items)
        try:
            return original(self, transact_items)
        except BaseException:
            restore(saved)
            raise

    backend.transact_write_items = transact_write_items
    return True


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1, so clients keep their connections.

    werkzeug's default HTTP/1.0 closes each connection after one request:
    every SDK call then paid a TCP connect and a new server thread.
    """

    protocol_version = "HTTP/1.1"


def patch_partition_queries() -> bool:
    """A Query on a table's own key reads its partition, not the whole table.

    moto 5.2.1 builds every such Query from `Table.all_items()`, which sorts
    the whole table, then keeps the queried partition. For the duration of
    the call, `all_items` is replaced by the partition, sorted the same way
    (by range key), so the results are the same items in the same order.
    Safe because requests are serialized (`SerializedApp`).
    """
    try:
        import inspect

        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.table import Table
    except ImportError:
        return False
    original = getattr(Table, "query", None)
    if original is None or not hasattr(Table, "all_items"):
        return False
    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        return False
    if "index_name" not in signature.parameters or "hash_key" not in signature.parameters:
        return False

    def query(self, *args, **kwargs):
        try:
            call = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            return original(self, *args, **kwargs)  # moto reports the mistake
        hash_key = call.get("hash_key")
        if call.get("index_name") or not isinstance(hash_key, DynamoType):
            return original(self, *args, **kwargs)
        partition = self.items.get(hash_key)
        if partition is None:
            items = []
        elif self.range_key_attr:
            items = sorted(partition.values(), key=lambda item: item.range_key)
        else:
            items = [partition]
        self.all_items = lambda: items
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query
    return True


def patch_module_listing() -> bool:
    """moto's dispatcher lists its own package directory on every request.

    The list cannot change while the server runs; read it once.
    """
    try:
        import moto.backends as backends
    except ImportError:
        return False
    listing = getattr(backends, "list_of_moto_modules", None)
    if listing is None:
        return False
    modules = tuple(listing())
    backends.list_of_moto_modules = lambda: modules
    return True


def patch_condition_parsing() -> bool:
    """Parses each condition expression once, not once per use.

    moto parses a condition twice per transaction item (the check, then the
    write) and again for every request; parsing was a third of its time in
    the load test. The parsed tree only reads the item it is evaluated on,
    so one tree serves every use of the same (expression, names, values).
    Errors are not cached: a bad expression is reported every time.
    """
    try:
        import moto.dynamodb.models as models
        import moto.dynamodb.models.table as table
        from moto.dynamodb import comparisons
    except ImportError:
        return False
    parse = getattr(comparisons, "get_filter_expression", None)
    if (
        parse is None
        or getattr(models, "get_filter_expression", None) is not parse
        or getattr(table, "get_filter_expression", None) is not parse
    ):
        return False
    cache = {}

    def get_filter_expression(expr, names, values):
        try:
            key = (expr, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
        except (TypeError, ValueError):
            return parse(expr, names, values)
        parsed = cache.get(key)
        if parsed is None:
            parsed = parse(expr, names, values)
            if len(cache) >= 4096:
                cache.clear()
            cache[key] = parsed
        return parsed

    models.get_filter_expression = get_filter_expression
    table.get_filter_expression = get_filter_expression
    return True


def speed_up_moto() -> list[str]:
    """Applies the patches above; returns the names of those that did not apply."""
    patches = {
        "transaction snapshots": patch_transaction_snapshots,
        "partition queries": patch_partition_queries,
        "module listing": patch_module_listing,
        "condition parsing": patch_condition_parsing,
    }
    return [name for name, patch in patches.items() if not patch()]


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

    missed = speed_up_moto()
    if missed:
        log.warning(
            "moto's internals are not those of moto 5.2.1; left as they are "
            "(correct, slower): %s",
            ", ".join(missed),
        )
    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    print(f"moto (serialized) on http://{args.host}:{args.port}", flush=True)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        use_reloader=False,
        request_handler=KeepAliveHandler,
    )


if __name__ == "__main__":
    main()
