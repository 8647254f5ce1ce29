"""A UDP echo on the outside web server (``python -m
tunnelwall.services.udpecho --port 443``): answers each datagram with its
first 64 bytes. There is no QUIC server in the testbed; what the collateral
mix measures for QUIC is whether a client's real first flight (an Initial
with a ClientHello) reaches the server at all, and the echo says it did."""

from __future__ import annotations

import argparse
import socket



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=443)
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", args.port))
    print(f"udp echo on {args.port}", flush=True)
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data[:64], peer)


if __name__ == "__main__":
    main()
