"""Forged packets the censor injects: TCP RSTs and DNS answers.

Pure functions: a parsed trigger packet in, Ethernet frames out. Sequence
numbers come from the trigger, so the endpoints accept the forgeries (as
on-path injectors like the GFW's must: it sends RST+ACK with sequence
numbers taken from the offending packet). Forgeries are IPv4 or IPv6 like
the trigger and carry its VLAN tags, so they reach the same hosts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tunnelwall.base.dnsmsg import build_answer

from .packet import ACK, FIN, RST, SYN, TCP, UDP, Packet, checksum, l4_checksum  # noqa: F401 - builders use them


def ip_header(src: bytes, dst: bytes, proto: int, l4: bytes, ttl: int = 64, ip_id: int = 0) -> bytes:
    """An IPv4 or IPv6 header (by the address length) followed by *l4*."""
    if len(src) == 16:
        return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, ttl, src, dst) + l4
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ip_id, 0x4000, ttl, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + l4


def ethernet(eth_src: bytes, eth_dst: bytes, family: int, l3: bytes, vlan: bytes = b"") -> bytes:
    return eth_dst + eth_src + vlan + (b"\x86\xdd" if family == 6 else b"\x08\x00") + l3


@dataclass(frozen=True)
class Endpoints:
    """Who a forged segment goes from and to: link and IP addresses, ports."""

    eth_src: bytes
    eth_dst: bytes
    src: bytes
    dst: bytes
    sport: int
    dport: int

    def reversed(self) -> Endpoints:
        return Endpoints(self.eth_dst, self.eth_src, self.dst, self.src, self.dport, self.sport)

    @classmethod
    def of(cls, pkt: Packet) -> Endpoints:
        """The endpoints of a parsed packet, as it travelled."""
        return cls(pkt.eth_src, pkt.eth_dst, pkt.src, pkt.dst, pkt.sport, pkt.dport)


def tcp_segment(ends: Endpoints, seq: int, ack: int, flags: int, payload: bytes = b"", *, ttl: int = 64,
                vlan: bytes = b"", window: int = 0) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", ends.sport, ends.dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window,
                      0, 0) + payload
    csum = l4_checksum(ends.src, ends.dst, TCP, tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    return ethernet(ends.eth_src, ends.eth_dst, 6 if len(ends.src) == 16 else 4,
                    ip_header(ends.src, ends.dst, TCP, tcp, ttl), vlan)


def tcp_resets(trigger: Packet, count: int = 1, windows: list[int] | None = None) -> list[bytes]:
    """RST+ACK to both ends of the trigger's connection. SYN and FIN take
    one sequence number each: a RST answering a SYN must acknowledge ISN+1
    or the client, in SYN-SENT, ignores it (RFC 9293 section 3.10.7.3).
    The receiver gets two: one at the trigger's first byte (it never got the
    trigger: inline, or lost) and one after it (it did: tap). A host accepts
    only a RST at exactly the next byte it expects (RFC 5961 section 3), and
    the GFW likewise sends several RSTs with different sequence numbers.

    *count* and *windows* shape what the sender gets: the GFW's port-443
    event of 2025-08-20 sent 3 RST+ACK per trigger with windows 1980-1982
    (gfw.report); the window of the i-th is ``windows[0] + i`` up to
    ``windows[1]``."""
    if trigger.proto != TCP:
        return []
    end = trigger.seq + len(trigger.payload) + (1 if trigger.flags & SYN else 0) + (1 if trigger.flags & FIN else 0)
    low, high = windows or (0, 0)
    ends = Endpoints.of(trigger)
    to_sender = [tcp_segment(ends.reversed(), trigger.ack, end, RST | ACK, vlan=trigger.vlan, window=min(low + i, high))
                 for i in range(count)]
    to_receiver = [tcp_segment(ends, seq, trigger.ack, RST | ACK, vlan=trigger.vlan) for seq in sorted({trigger.seq, end})]
    return [*to_sender, *to_receiver]


def dns_answer(query: Packet, answer_ip: str, ttl: int = 300) -> bytes | None:
    """A forged A answer to a DNS query, from the queried server's address."""
    if query.proto != UDP:
        return None
    dns = build_answer(query.payload, answer_ip, ttl)
    if dns is None:
        return None
    udp = struct.pack("!HHHH", query.dport, query.sport, 8 + len(dns), 0) + dns
    csum = l4_checksum(query.dst, query.src, UDP, udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return ethernet(query.eth_dst, query.eth_src, query.family,
                    ip_header(query.dst, query.src, UDP, udp), query.vlan)
