#!/usr/bin/env python3
"""Local OIDC provider fixture: discovery document and JWKS, nothing else.

Mimics the shape of Microsoft Entra ID's v2.0 endpoints so the OIDC probe can
be exercised without the internet:

  GET <issuer path>/.well-known/openid-configuration   discovery document
  GET /.well-known/openid-configuration                 same (root alias)
  GET /discovery/v2.0/keys                              JWKS, one RSA key

Everything else is 404. Standard library only; no private key exists (the
JWK is a public key only, tokens cannot be signed with it).

Usage: oidc_fixture.py [--host 127.0.0.1] [--port 58080] [--issuer URL]
                       [--tls-port N --tls-cert FILE --tls-key FILE]
       (issuer defaults to http://<host>:<port>; --port 0 takes a free port,
       the first line printed is "oidc fixture on http://HOST:PORT, issuer ...")

With --tls-port, the same handler is also served over HTTPS on HOST:N (PEM
certificate chain and key from the files; 0 takes a free port), and a second
line "oidc fixture TLS on https://HOST:N" is printed. The local stack uses it
as the endpoint of the certificates probe.
"""

import argparse
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

JWKS_PATH = "/discovery/v2.0/keys"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"

# A 2048-bit RSA public key (modulus base64url), made for this fixture.
KEY = {
    "kty": "RSA",
    "use": "sig",
    "alg": "RS256",
    "kid": "blindspotx-local-fixture-1",
    "n": (
        "qRqkjgoyyZecfH3C3QbU-U9vhaYGUtsAcIbkqWfuamVZ3OB94UWV-zQmOCDN0FSSJ5sW8Yss"
        "v4IsjiJmFa2ctbKGtWl-dUjFiWixE1WPVjtv7qMTk3J17AgPoLLAt0qXBiG6Pd7dfGxpcVx_"
        "AvQJBRdUYuvUuSLAx6yPmmfG513xv5vIe1VGsvEKGW-CbMNGXqm7PgYBw6lZlmK0SAt999_k"
        "UsFOCrpHb3YYUn1AaMbUPxY2LoLaOQEcyQ6vFJkLIObf6GDzqG5HWx73JeAsjTniUnQYDp-c"
        "B4z606EzlU56gY0NouBXoSmupGBI9va81rxaof8OOEEj-sWGpVwMEw"
    ),
    "e": "AQAB",
}


def discovery(base: str, issuer: str) -> dict:
    return {
        "issuer": issuer,
        "jwks_uri": base + JWKS_PATH,
        "authorization_endpoint": base + "/oauth2/v2.0/authorize",
        "token_endpoint": base + "/oauth2/v2.0/token",
        "userinfo_endpoint": base + "/oidc/userinfo",
        "end_session_endpoint": base + "/oauth2/v2.0/logout",
        "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name",
            "preferred_username", "email", "oid", "tid", "ver",
        ],
        "request_uri_parameter_supported": False,
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
    }


def make_handler(base: str, issuer: str, verbose: bool):
    issuer_path = urlsplit(issuer).path.rstrip("/")
    discovery_paths = {DISCOVERY_SUFFIX, issuer_path + DISCOVERY_SUFFIX}
    doc = json.dumps(discovery(base, issuer), indent=2).encode()
    jwks = json.dumps({"keys": [dict(KEY, issuer=issuer)]}, indent=2).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "blindspotx-oidc-fixture/1"
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, body: bytes, ctype: str, head_only: bool) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=60")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _route(self, head_only: bool) -> None:
            path = urlsplit(self.path).path
            if path in discovery_paths:
                self._reply(200, doc, "application/json; charset=utf-8", head_only)
            elif path == JWKS_PATH:
                self._reply(200, jwks, "application/json; charset=utf-8", head_only)
            else:
                body = json.dumps({"error": "not_found", "path": path}).encode()
                self._reply(404, body, "application/json", head_only)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._route(False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._route(True)

        def log_message(self, fmt, *args) -> None:
            if verbose:
                sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    return Handler


class TLSServer(ThreadingHTTPServer):
    """HTTPS: the TLS handshake runs in the request's thread (not in accept),
    so a client that connects and says nothing cannot stall the server."""

    daemon_threads = True
    handshake_timeout = 10.0

    def __init__(self, address, handler, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address) -> None:
        request.settimeout(self.handshake_timeout)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # port check, plain-HTTP client, failed handshake: drop it
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser(description="local OIDC discovery + JWKS fixture")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=58080)
    parser.add_argument("--issuer", default=None, help="default http://<host>:<port>")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--tls-port", type=int, default=None,
                        help="also serve HTTPS on this port (0: any free port)")
    parser.add_argument("--tls-cert", default=None, help="PEM certificate (chain) for HTTPS")
    parser.add_argument("--tls-key", default=None, help="PEM private key for HTTPS")
    args = parser.parse_args()
    tls_args = (args.tls_port, args.tls_cert, args.tls_key)
    if any(a is not None for a in tls_args) and any(a is None for a in tls_args):
        parser.error("--tls-port, --tls-cert and --tls-key go together")

    # Bind first so that --port 0 (any free port) works; the first line on
    # stdout names the address actually used.
    server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    server.daemon_threads = True
    base = f"http://{args.host}:{server.server_address[1]}"
    issuer = args.issuer or base
    handler = make_handler(base, issuer, args.verbose)
    server.RequestHandlerClass = handler

    tls_server = None
    if args.tls_port is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls_server = TLSServer((args.host, args.tls_port), handler, context)
        threading.Thread(target=tls_server.serve_forever, name="https", daemon=True).start()

    print(f"oidc fixture on {base}, issuer {issuer}", flush=True)
    if tls_server is not None:
        print(f"oidc fixture TLS on https://{args.host}:{tls_server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if tls_server is not None:
            tls_server.shutdown()
            tls_server.server_close()
        server.server_close()


if __name__ == "__main__":
    main()
