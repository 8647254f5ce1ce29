"""The GFW's port-443 event of 2025-08-20: the shape of the injected RSTs.

GFW Report, "Analysis of the GFW's Unconditional Port 443 Block on August
20, 2025": for 74 minutes every TCP connection to port 443 was reset; the
client's SYN triggered three RST+ACK (sequence 0, windows 1980-1982), the
server's SYN/ACK three more (sequence 1, windows 3293-3295); other ports
were untouched. The emulated shape is read from the forged frames the censor
would send (``inject.tcp_resets``), not from the profile's text.
"""

from __future__ import annotations

import struct

from ..inject import tcp_resets
from ..packet import ACK, RST, SYN, parse_ethernet
from . import NOT_BLOCKED, Vector
from .capture import Tcp

SOURCE = "GFW Report, port 443 block of 2025-08-20"
SYN_SHAPE = "3 RST+ACK to the client after its SYN: seq 0, windows 1980-1982"
SYNACK_SHAPE = "3 RST+ACK after the server's SYN/ACK: seq 1, windows 3293-3295"


def _shape(frames: list[bytes], what: str) -> str:
    """The RST+ACKs among *frames* in words: count, sequence numbers, windows."""
    rsts = []
    for frame in frames:
        ip = frame[14:]
        tcp = ip[(ip[0] & 0x0F) * 4:]
        seq, flags, window = struct.unpack_from(">I", tcp, 4)[0], tcp[13], struct.unpack_from(">H", tcp, 14)[0]
        if flags & (RST | ACK) == RST | ACK:
            rsts.append((seq, window))
    if not rsts:
        return f"no RST {what}"
    seqs = sorted({s for s, _ in rsts})
    windows = sorted(w for _, w in rsts)
    return (f"{len(rsts)} RST+ACK {what}: seq {','.join(map(str, seqs))}, "
            f"windows {windows[0]}-{windows[-1]}")


def _syn_outcome(profile, flows, engine):
    flow = flows[0] if flows else None
    v = flow.verdict if flow else None
    if v is None or v.action != "reset":
        return NOT_BLOCKED, f"verdict {v.action if v else 'none'}"
    syn = parse_ethernet(_syn_frames()[0][1])
    resets = v.resets or {}
    forged = tcp_resets(syn, resets.get("count", 1), resets.get("windows"))
    to_client = [f for f in forged if f[0:6] == syn.eth_src]          # the client's MAC is the destination
    return _shape(to_client, "to the client after its SYN"), f"reset by {v.rule}, packet {v.packet_index}"


def _synack_outcome(profile, flows, engine):
    v = flows[0].verdict if flows else None
    if v is not None and v.action == "reset" and v.packet_index == 1:
        return "no RST after the server's SYN/ACK", f"the connection was reset at its SYN (packet 1, {v.rule})"
    return "no RST after the server's SYN/ACK", f"verdict {v.action if v else 'none'}"


def _syn_frames():
    return Tcp(dport=443).client(SYN).frames


VECTORS = [
    Vector("port-443", "a SYN to port 443", _syn_frames, SYN_SHAPE, SOURCE, ("gfw-2025-08-443",), outcome=_syn_outcome),
    Vector("port-443", "the server's SYN/ACK on port 443", lambda: Tcp(dport=443).client(SYN).server(SYN | ACK).frames,
           SYNACK_SHAPE, SOURCE, ("gfw-2025-08-443",), outcome=_synack_outcome,
           note="the profile injects the SYN's three RSTs only: the verdict is reached at the SYN, and inline "
                "the SYN never reaches the server, so no SYN/ACK follows to trigger the second three "
                "(docs/censors.md, gfw-2025-08-443); a tap-placed censor would see it and does not model it"),
    Vector("port-443", "a connection to port 80 with an HTTP request",
           lambda: Tcp(dport=80).handshake().data(b"GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n").frames,
           NOT_BLOCKED, SOURCE + " (other ports untouched)", ("gfw-2025-08-443",)),
]
