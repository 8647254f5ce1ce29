"""Names in TLS and HTTP: SNI and Host blocklists, ESNI, the TSPU's ECH rule."""

from __future__ import annotations

import struct

from tunnelwall.base.tlshello import client_hello

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import Tcp


def _hello(sni: str, extra: list[tuple[int, bytes]]) -> bytes:
    """A ClientHello with an SNI and the given extensions (e.g. ESNI 0xffce, ECH 0xfe0d)."""
    raw = sni.encode()
    exts = [(0, struct.pack(">HBH", len(raw) + 3, 0, len(raw)) + raw), *extra]
    ext_bytes = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body = (b"\x03\x03" + b"\x5a" * 32 + b"\x00" + b"\x00\x04\x13\x01\x13\x02" + b"\x01\x00"
            + struct.pack(">H", len(ext_bytes)) + ext_bytes)
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def _tcp(first: bytes, server: str = "198.18.0.20", dport: int = 443):
    return lambda: Tcp(server=server, dport=dport).handshake().data(first).frames


GFW = ("gfw-2025", "gfw-2022")
ECH_SOURCE = "net4people/bbs reports of the TSPU's ECH blocking (2024-11-05)"

VECTORS = [
    Vector("names", "ClientHello naming www.twitter.com", _tcp(client_hello("www.twitter.com")), BLOCKED,
           "Hoang et al. (GFWeb), USENIX Security 2024 (SNI filtering, RST)", GFW),
    Vector("names", "ClientHello naming www.example.org (not listed)", _tcp(client_hello("www.example.org", ["h2"])),
           NOT_BLOCKED, "Hoang et al. (GFWeb), USENIX Security 2024", GFW),
    Vector("names", "HTTP request with Host www.twitter.com",
           _tcp(b"GET / HTTP/1.1\r\nHost: www.twitter.com\r\n\r\n", dport=80), BLOCKED,
           "Hoang et al. (GFWeb), USENIX Security 2024 (Host filtering, RST)", GFW),
    Vector("names", "ClientHello with the ESNI extension (0xffce)", _tcp(_hello("a.example", [(0xFFCE, bytes(8))])),
           BLOCKED, "Bock et al., GFW Report, ESNI blocking (2020-07)", GFW),
    Vector("names", "ECH with SNI cloudflare-ech.com", _tcp(_hello("cloudflare-ech.com", [(0xFE0D, bytes(8))])),
           BLOCKED, ECH_SOURCE, ("tspu-2025",)),
    Vector("names", "ECH with SNI www.example.org", _tcp(_hello("www.example.org", [(0xFE0D, bytes(8))])),
           NOT_BLOCKED, ECH_SOURCE + " (only with SNI cloudflare-ech.com)", ("tspu-2025",)),
]
