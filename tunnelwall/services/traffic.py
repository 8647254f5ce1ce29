"""Background traffic from a client node: ordinary users' HTTPS, HTTP and
DNS to the outside web server, so a classroom or an experiment has a
censor that also sees (and may hurt) benign traffic, as a real one does.

Started by the runtime for each node with ``traffic:`` in the topology
(``python -m tunnelwall.services.traffic --web IP --names ... --mix
https,http,dns --per-minute 30 --log FILE``; ``quic`` sends a real QUIC
first flight, answered by the web server's UDP echo). Attempts arrive as a Poisson
process at the given rate (seeded), each a new connection to a random
ordinary name (SNI, Host, query) with a random small size; each outcome is
one JSON line in the log: ``ok``, ``reset`` (a RST ended it), ``blocked``
(nothing came through), ``cut`` (part came through, then nothing),
``poisoned`` (a DNS answer that is not the web server). The classes and
outcomes are those of ``tunnelwall collateral``, whose summary reads the log.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import ssl
import sys
import time

from tunnelwall.services.dnsserver import query

SIZES = (2_000, 10_000, 50_000)
TIMEOUT = 8.0


def fetch(web: str, name: str, size: int, tls: bool, timeout: float = TIMEOUT) -> tuple[str, int]:
    """GET /bytes/SIZE from *web* with *name* as SNI and Host: (outcome, bytes)."""
    got = 0
    try:
        raw = socket.create_connection((web, 443 if tls else 80), timeout=timeout)
    except (ConnectionResetError, ConnectionRefusedError):
        return "reset", 0          # a RST answered the SYN
    except OSError:
        return "blocked", 0
    try:
        sock = raw
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            sock = ctx.wrap_socket(raw, server_hostname=name)
        sock.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return "blocked", 0
            head += chunk
        got = len(head.split(b"\r\n\r\n", 1)[1])
        while got < size and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        return ("ok" if got >= size else "cut"), got
    except ConnectionResetError:
        return "reset", got
    except (OSError, ssl.SSLError):         # timeouts, a TLS stream that just stopped
        return ("cut" if got else "blocked"), got
    finally:
        raw.close()


def quic_first_flight(web: str, name: str, timeout: float = 3.0) -> str:
    """A QUIC v1 Initial carrying a real ClientHello for *name* to web:443
    from an ephemeral port: ``ok`` if the server's UDP echo came back (the
    first flight got through), else ``blocked``."""
    import os
    from tunnelwall.base.quic import initial_packet
    from tunnelwall.base.tlshello import client_hello
    packet = initial_packet(client_hello(name, alpn=["h3"])[5:], os.urandom(8), os.urandom(8))
    family = socket.AF_INET6 if ":" in web else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (web, 443))
        try:
            s.recv(2048)
        except OSError:
            return "blocked"
    return "ok"


def resolve(web: str, name: str) -> str:
    try:
        answer = query(name, web, timeout=3.0)
    except OSError:
        return "blocked"
    if not answer:
        return "blocked"
    return "ok" if answer == web else "poisoned"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--web", required=True)
    ap.add_argument("--names", required=True)
    ap.add_argument("--mix", default="https,http,dns")
    ap.add_argument("--per-minute", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log")
    ap.add_argument("--once", metavar="KIND", help="one attempt of KIND to the first name; print its outcome")
    args = ap.parse_args()
    if args.once:
        name = args.names.split(",")[0]
        if args.once == "quic":
            print(quic_first_flight(args.web, name))
        elif args.once == "dns":
            print(resolve(args.web, name))
        else:
            print(fetch(args.web, name, SIZES[0], tls=args.once == "https")[0])
        return 0
    if not args.log:
        ap.error("--log is required (or --once KIND)")
    names, mix = args.names.split(","), args.mix.split(",")
    rng = random.Random(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.log, "a", buffering=1) as log:
        print(f"traffic: {args.per_minute}/min of {','.join(mix)} to {args.web}", flush=True)
        while True:
            time.sleep(rng.expovariate(args.per_minute / 60.0))
            kind, name, size = rng.choice(mix), rng.choice(names), rng.choice(SIZES)
            t0 = time.monotonic()
            if kind == "dns":
                outcome, got = resolve(args.web, name), 0
            elif kind == "quic":
                outcome, got = quic_first_flight(args.web, name), 0
            else:
                outcome, got = fetch(args.web, name, size, tls=kind == "https")
            # One write per line: a reader never sees half a record.
            log.write(json.dumps({"time": round(time.time(), 3), "kind": kind, "name": name, "outcome": outcome,
                                  "bytes": got, "size": size if kind != "dns" else 0,
                                  "seconds": round(time.monotonic() - t0, 3)}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
