"""Iran: the 2020 protocol allowlist and the 2026 address and name allowlists."""

from __future__ import annotations

import random

from tunnelwall.base.tlshello import client_hello

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import OTHER, WEB, Tcp, udp

BOCK = "Bock et al., Iran's Protocol Whitelister, FOCI 2020"
REPORTS = "net4people/bbs user reports, 2026-01"
RANDOM = random.Random(2020).randbytes(200)


def _first(payload: bytes, dport: int, server: str = OTHER):
    return lambda: Tcp(server=server, dport=dport).handshake().data(payload).frames


VECTORS = [
    Vector("iran", "random bytes first on port 443", _first(RANDOM, 443), BLOCKED, BOCK, ("iran-whitelist",)),
    Vector("iran", "random bytes first on port 8443", _first(RANDOM, 8443), NOT_BLOCKED, BOCK + " (53/80/443 only)",
           ("iran-whitelist",)),
    Vector("iran", "a TLS ClientHello on port 443", _first(client_hello("www.example.org"), 443), NOT_BLOCKED, BOCK,
           ("iran-whitelist",)),
    Vector("iran", "an HTTP request on port 80", _first(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", 80), NOT_BLOCKED,
           BOCK, ("iran-whitelist",)),
    Vector("iran", "TLS naming example.org to an allowlisted address", _first(client_hello("example.org"), 443, WEB),
           NOT_BLOCKED, REPORTS, ("iran-2026",)),
    Vector("iran", "TLS naming www.bbc.com to an allowlisted address", _first(client_hello("www.bbc.com"), 443, WEB),
           BLOCKED, REPORTS, ("iran-2026",)),
    Vector("iran", "TCP to an address not allowlisted", _first(client_hello("example.org"), 443, OTHER), BLOCKED,
           REPORTS, ("iran-2026",)),
    Vector("iran", "UDP to an address not allowlisted", lambda: udp([RANDOM], dport=4500), BLOCKED, REPORTS,
           ("iran-2026",)),
]
