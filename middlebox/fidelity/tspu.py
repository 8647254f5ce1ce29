"""Russia's TSPU: the 2021 Twitter throttle and the 2025 datacenter freeze."""

from __future__ import annotations

from tunnelwall.base.tlshello import client_hello

from . import FROZEN, NOT_BLOCKED, THROTTLED, Vector
from .capture import OTHER, WEB, Tcp

XUE_2021 = "Xue et al., Throttling Twitter, IMC 2021"
CLOUDFLARE = "Cloudflare blog 2025-06-26 (15-20 KB, then nothing, no RST)"


def _hello(name: str, server: str = OTHER):
    return lambda: Tcp(server=server).handshake().data(client_hello(name, ["h2", "http/1.1"])).frames


def _download(server: str, chunks: int = 5, size: int = 4096):
    def build():
        conn = Tcp(server=server).handshake().data(client_hello("www.example.org", ["h2"]))
        for _ in range(chunks):
            conn.server(0x18, bytes(size))
        return conn.frames
    return build


VECTORS = [
    Vector("tspu", "ClientHello naming twitter.com", _hello("twitter.com"), THROTTLED, XUE_2021, ("tspu-2021",)),
    Vector("tspu", "ClientHello naming www.reddit.com (the loose *t.co* rule)", _hello("www.reddit.com"), THROTTLED,
           XUE_2021 + " (collateral of *t.co*)", ("tspu-2021",)),
    Vector("tspu", "ClientHello naming www.example.org", _hello("www.example.org"), NOT_BLOCKED, XUE_2021,
           ("tspu-2021",)),
    Vector("tspu", "20 KB from a datacenter host over TLS", _download(WEB), FROZEN, CLOUDFLARE, ("tspu-2025",)),
    Vector("tspu", "20 KB from a host outside the datacenter list", _download(OTHER), NOT_BLOCKED, CLOUDFLARE,
           ("tspu-2025",)),
]
