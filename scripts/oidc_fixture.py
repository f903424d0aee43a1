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
       (issuer defaults to http://<host>:<port>; --port 0 takes a free port,
       the first line printed is "oidc fixture on http://HOST:PORT, issuer ...")
"""

import argparse
import json
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description="local OIDC discovery + JWKS fixture")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=58080)
    parser.add_argument("--issuer", default=None, help="default http://<host>:<port>")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()

    # Bind first so that --port 0 (any free port) works; the first line on
    # stdout names the address actually used.
    server = ThreadingHTTPServer((args.host, args.port), BaseHTTPRequestHandler)
    server.daemon_threads = True
    base = f"http://{args.host}:{server.server_address[1]}"
    issuer = args.issuer or base
    server.RequestHandlerClass = make_handler(base, issuer, args.verbose)
    print(f"oidc fixture on {base}, issuer {issuer}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
