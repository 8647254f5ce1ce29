"""The outside world's web server: HTTP and HTTPS on one node.

``GET /bytes/N`` returns N pseudo-random bytes (incompressible, so a tunnel
cannot make a transfer look faster than it is); ``GET /`` a short page;
``POST /upload`` reads an upload and says how many bytes arrived.
Run as ``python -m tunnelwall.services.webserver --http 80 --https 443 --cert C --key K``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tunnelwall.services.dualstack import DualStack

CHUNK = os.urandom(1 << 16)
MAX_BYTES = 1 << 31
MAX_UPLOAD = 64 << 20


class Handler(BaseHTTPRequestHandler):
    server_version = "tunnelwall-web/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's API)
        if self.path.startswith("/bytes/"):
            try:
                size = int(self.path.split("/")[2])
            except (IndexError, ValueError):
                return self._send(400, b"bad size\n")
            if not 0 <= size <= MAX_BYTES:
                return self._send(400, b"size out of range\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size
            while left > 0:
                piece = CHUNK[: min(left, len(CHUNK))]
                self.wfile.write(piece)
                left -= len(piece)
            return None
        return self._send(200, b"tunnelwall outside web server\n")

    def do_POST(self):  # noqa: N802 (http.server's API)
        """``POST /upload``: read the body (an upload of any content), answer
        how many bytes arrived."""
        try:
            size = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._send(400, b"bad length\n")
        if not 0 <= size <= MAX_UPLOAD:
            return self._send(413, b"too large\n")
        left = size
        while left > 0:
            piece = self.rfile.read(min(left, 1 << 16))
            if not piece:
                break
            left -= len(piece)
        return self._send(200, f"received {size - left}\n".encode())

    def _send(self, code: int, body: bytes):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # one line per request in the service log
        print(f"{self.client_address[0]} {fmt % args}", flush=True)


class DualStackServer(DualStack, ThreadingHTTPServer):
    """Listens on IPv6 and IPv4 at once."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", type=int, default=0)
    ap.add_argument("--https", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    servers = []
    if args.http:
        servers.append(DualStackServer(("::", args.http), Handler))
    if args.https:
        srv = DualStackServer(("::", args.https), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        # The handshake runs in each connection's thread, not in accept():
        # a client whose ClientHello never completes (the censor held it back)
        # must not stall the server for everyone else.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(srv)
    for srv in servers:
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(f"serving http={args.http} https={args.https}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
