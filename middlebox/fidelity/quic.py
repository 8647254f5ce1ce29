"""QUIC Initials as the GFW reads them (the basics; Table 3's malformed
Initials are a set of their own).

Zohaib et al., "Exposing and Circumventing SNI-based QUIC Censorship of the
Great Firewall of China", USENIX Security 2025: the GFW decrypts the first
packet of a flow, blocks a listed SNI only when the source port is greater
than the destination port, and (since 2025-03-13) only leaving China; a
datagram sent first on the same 4-tuple makes it skip the flow.
"""

from __future__ import annotations

import os

from tunnelwall.base.quic import initial_packet
from tunnelwall.base.tlshello import client_hello

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import CLIENT, udp

SOURCE = "Zohaib et al., USENIX Security 2025"
DCID = bytes.fromhex("8394c8f03e515708")


def _initial(sni: str = "www.youtube.com") -> bytes:
    return initial_packet(client_hello(sni, ["h3"])[5:], DCID)


VECTORS = [
    Vector("quic", "Initial naming www.youtube.com, source port 50000 > 443", lambda: udp([_initial()]), BLOCKED,
           SOURCE, ("gfw-2025",)),
    Vector("quic", "the same Initial from source port 400 < 443", lambda: udp([_initial()], sport=400), NOT_BLOCKED,
           SOURCE + " (sport > dport only)", ("gfw-2025",)),
    Vector("quic", "a random datagram first, then the Initial", lambda: udp([os.urandom(40), _initial()]),
           NOT_BLOCKED, SOURCE + " (first packet of a flow only)", ("gfw-2025",)),
    Vector("quic", "the Initial coming into China (client outside)",
           lambda: udp([_initial()], client="198.18.0.30", server=CLIENT), NOT_BLOCKED,
           SOURCE + " (outbound only since 2025-03-13)", ("gfw-2025",)),
    Vector("quic", "Initial naming www.example.org to a foreign host", lambda: udp([_initial("www.example.org")]),
           BLOCKED, "net4people/bbs reports: QUIC to foreign hosts dropped (since 2022)", ("tspu-2025",)),
]
