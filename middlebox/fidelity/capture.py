"""Byte builders for the vectors: TCP connections and UDP datagrams as the
censor sees them on the wire (Ethernet, IPv4, real checksums). The
addresses are the testbed's: a client inside (10.0.0.11) and servers
outside (198.18.0.x), so direction rules see traffic leaving the country."""

from __future__ import annotations

import struct

from ..inject import Endpoints, ethernet, ip_header, l4_checksum, tcp_segment
from ..packet import ACK, FIN, PSH, RST, SYN, UDP, ip_bytes

CLIENT = "10.0.0.11"
WEB = "198.18.0.10"          # the outside web server (a "datacenter" host in tspu-2025, allowlisted in iran-2026)
OTHER = "198.18.0.20"        # the outside vpn server (unlisted everywhere)
_MAC_C, _MAC_S = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"

__all__ = ["CLIENT", "WEB", "OTHER", "Tcp", "udp", "ACK", "FIN", "PSH", "RST", "SYN"]


class Tcp:
    """One TCP connection: frames with consistent sequence numbers."""

    def __init__(self, server: str = OTHER, dport: int = 443, sport: int = 40000, client: str = CLIENT,
                 isn: int = 1000, server_isn: int = 5000):
        self.c, self.s = ip_bytes(client), ip_bytes(server)
        self.sport, self.dport = sport, dport
        self.seq, self.sseq = isn, server_isn
        self.frames: list[tuple[float, bytes]] = []
        self.t = 0.0

    def _add(self, frame: bytes) -> "Tcp":
        self.t += 0.001
        self.frames.append((self.t, frame))
        return self

    def client(self, flags: int, payload: bytes = b"", seq: int | None = None, ttl: int = 64) -> "Tcp":
        ack = self.sseq if flags & ACK else 0             # a SYN acknowledges nothing
        frame = tcp_segment(Endpoints(_MAC_C, _MAC_S, self.c, self.s, self.sport, self.dport),
                            self.seq if seq is None else seq, ack, flags, payload, ttl=ttl, window=64240)
        if seq is None:
            self.seq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return self._add(frame)

    def server(self, flags: int, payload: bytes = b"") -> "Tcp":
        frame = tcp_segment(Endpoints(_MAC_S, _MAC_C, self.s, self.c, self.dport, self.sport), self.sseq, self.seq,
                            flags, payload, window=65160)
        self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return self._add(frame)

    def handshake(self) -> "Tcp":
        return self.client(SYN).server(SYN | ACK).client(ACK)

    def data(self, payload: bytes) -> "Tcp":
        return self.client(PSH | ACK, payload)


def udp(payloads: list[bytes], server: str = OTHER, dport: int = 443, sport: int = 50000,
        client: str = CLIENT, replies: dict[int, bytes] | None = None) -> list[tuple[float, bytes]]:
    """Datagrams from the client (and, at the given positions, the server's replies)."""
    c, s = ip_bytes(client), ip_bytes(server)
    out = []
    for i, payload in enumerate(payloads):
        out.append(((i + 1) * 0.001, _udp(c, s, sport, dport, payload, _MAC_C, _MAC_S)))
        if replies and i in replies:
            out.append(((i + 1) * 0.001 + 0.0005, _udp(s, c, dport, sport, replies[i], _MAC_S, _MAC_C)))
    return out


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, mac_src: bytes, mac_dst: bytes) -> bytes:
    l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    l4 = l4[:6] + struct.pack("!H", l4_checksum(src, dst, UDP, l4) or 0xFFFF) + l4[8:]
    return ethernet(mac_src, mac_dst, 4, ip_header(src, dst, UDP, l4))
