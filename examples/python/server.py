"""A resource server protected by tessera_auth.py.

    python3 server.py --issuer http://127.0.0.1:8080 --audience api --listen 127.0.0.1:9090

``GET /me`` answers the verified claims as JSON; a missing, invalid or
revoked token earns a 401 with an RFC 6750 ``WWW-Authenticate`` challenge,
and stale revocation data a 503 (unless --fail-open). ``GET /healthz``: 200.
Prints ``listening on HOST:PORT`` on stdout once discovery, the JWKS and the
revocation stream are in place; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tessera_auth import TesseraAuth


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="the issuer's URL, as in its tokens' iss")
    parser.add_argument("--audience", required=True, help="the audience this server accepts")
    parser.add_argument("--listen", default="127.0.0.1:9090", help="HOST:PORT (port 0: any free port)")
    parser.add_argument(
        "--max-staleness", type=float, default=30.0,
        help="seconds after which revocation data is stale (default 30)",
    )
    parser.add_argument(
        "--fail-open", action="store_true",
        help="accept tokens while revocation data is stale (default: refuse with 503)",
    )
    parser.add_argument(
        "--allow-insecure-http", action="store_true",
        help="allow http:// issuers on hosts other than loopback",
    )
    args = parser.parse_args(argv)
    host, sep, port = args.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        parser.error("--listen must be HOST:PORT")
    args.host, args.port = host.strip("[]"), int(port)
    if not args.max_staleness > 0:
        parser.error("--max-staleness must be a positive number of seconds")
    return args


class Handler(BaseHTTPRequestHandler):
    """`GET /me` and `GET /healthz`; request bodies are never read."""

    protocol_version = "HTTP/1.1"
    server_version = "tessera-example"
    # Seconds a connection may stay silent (slow headers, idle keep-alive).
    timeout = 10
    auth: TesseraAuth  # set on the class by main()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._send(200, {"status": "ok"})
        if path != "/me":
            return self._send(404, {"error": "not_found"})
        result = self.auth.verify(self.headers)
        if result.ok:
            return self._send(200, result.claims)
        headers = {"WWW-Authenticate": result.www_authenticate}
        if result.status == 503:
            headers["Retry-After"] = "1"
        body = {"error": result.error or "unauthorized"}
        if result.description:
            body["error_description"] = result.description
        return self._send(result.status, body, headers)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _not_allowed(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/me", "/healthz"):
            self._send(405, {"error": "method_not_allowed"}, {"Allow": "GET, HEAD"})
        else:
            self._send(404, {"error": "not_found"})

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        # Request bodies are never read: a request that has one ends its connection.
        if self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # No access log: a request line may carry a query string.
        pass


class Server(ThreadingHTTPServer):
    """One thread per connection, at most ``MAX_CONNECTIONS`` at once (more
    are closed at once); each bounded by ``Handler.timeout``."""

    MAX_CONNECTIONS = 256
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:  # noqa: ANN001
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args(argv)
    try:
        auth = TesseraAuth(
            args.issuer,
            args.audience,
            max_staleness=args.max_staleness,
            fail_open=args.fail_open,
            allow_insecure_http=args.allow_insecure_http,
        )
        auth.start()
    except Exception as error:  # noqa: BLE001 - reported and fatal
        print(f"tessera_auth: cannot start: {error}", file=sys.stderr)
        return 1
    Handler.auth = auth
    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    try:
        server = Server((args.host, args.port), Handler)
    except OSError as error:
        print(f"cannot listen on {args.listen}: {error}", file=sys.stderr)
        auth.close()
        return 1
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    print(f"listening on {host}:{port}", flush=True)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        auth.close()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
