"""The outside world's DNS server (UDP and TCP 53), and a small query helper.

``python -m tunnelwall.services.dnsserver --zone www.twitter.com=198.18.0.10,... [--delay 0.05]``

``--delay`` holds every answer back, as if the resolver were far away:
censors that inject forged answers win the race because the real answer
comes from abroad (the GFW's forged answers arrive first; FOCI 2014).

``python -m tunnelwall.services.dnsserver --query NAME --server IP [--tcp]`` prints
the first A record it gets back.
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import struct
import sys
import threading
import time

from tunnelwall.base.dnsmsg import build_answer, parse_dns_query
from tunnelwall.services.dualstack import DualStack


def answer(query: bytes, zone: dict[str, str]) -> bytes | None:
    parsed = parse_dns_query(query)
    if parsed is None:
        return None
    return build_answer(query, zone.get(parsed["qname"]) if parsed["qtype"] == 1 else None)


def serve(zone: dict[str, str], delay: float) -> None:
    class Udp(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            reply = answer(data, zone)
            if reply:
                time.sleep(delay)
                sock.sendto(reply, self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self):
            size = self.rfile.read(2)
            if len(size) == 2:
                reply = answer(self.rfile.read(struct.unpack("!H", size)[0]), zone)
                if reply:
                    time.sleep(delay)
                    self.wfile.write(struct.pack("!H", len(reply)) + reply)

    class Udp6(DualStack, socketserver.ThreadingUDPServer):
        pass

    class Tcp6(DualStack, socketserver.ThreadingTCPServer):
        pass

    for server in (Udp6(("::", 53), Udp), Tcp6(("::", 53), Tcp)):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"dns: {len(zone)} names, answers delayed {delay * 1000:.0f} ms", flush=True)
    threading.Event().wait()


def query(name: str, server: str, tcp: bool = False, timeout: float = 3.0) -> str | None:
    q = struct.pack("!6H", 0x1d1d, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00" + struct.pack("!HH", 1, 1)
    if tcp:
        with socket.create_connection((server, 53), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            size = struct.unpack("!H", s.recv(2))[0]
            reply = b""
            while len(reply) < size:
                reply += s.recv(size - len(reply))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, (server, 53))
            reply = s.recv(4096)      # the first answer wins, as in a stub resolver
    if struct.unpack_from("!H", reply, 6)[0] < 1:
        return None
    return socket.inet_ntoa(reply[-4:])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", default="", help="name=address,...")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--query")
    ap.add_argument("--server")
    ap.add_argument("--tcp", action="store_true")
    args = ap.parse_args()
    if args.query:
        print(query(args.query, args.server, args.tcp) or "NXDOMAIN")
        return 0
    zone = dict(item.split("=", 1) for item in args.zone.split(",") if item)
    serve({k.lower().rstrip("."): v for k, v in zone.items()}, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
