"""Forged packets the censor injects: TCP RSTs and DNS answers.

Pure functions: a parsed trigger packet in, Ethernet frames out. Sequence
numbers come from the trigger, so the endpoints accept the forgeries (as
on-path injectors like the GFW's must: it sends RST+ACK with sequence
numbers taken from the offending packet). Forgeries are IPv4 or IPv6 like
the trigger and carry its VLAN tags, so they reach the same hosts.
"""

from __future__ import annotations

import struct

from tunnelwall.base.dnsmsg import build_answer

from .packet import ACK, FIN, RST, SYN, TCP, UDP, Packet


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def l4_checksum(src: bytes, dst: bytes, proto: int, l4: bytes) -> int:
    """The TCP/UDP checksum over the pseudo-header; 0 for a segment whose
    checksum is right. The IPv4 (RFC 793) and IPv6 (RFC 8200 section 8.1)
    pseudo-headers differ in layout but, for segments under 64 KiB, not in
    their one's-complement sum, so one formula serves both."""
    return checksum(src + dst + struct.pack("!BBH", 0, proto, len(l4)) + l4)


def ip_header(src: bytes, dst: bytes, proto: int, l4: bytes, ttl: int = 64, ip_id: int = 0) -> bytes:
    """An IPv4 or IPv6 header (by the address length) followed by *l4*."""
    if len(src) == 16:
        return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, ttl, src, dst) + l4
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ip_id, 0x4000, ttl, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + l4


def ethernet(eth_src: bytes, eth_dst: bytes, family: int, l3: bytes, vlan: bytes = b"") -> bytes:
    return eth_dst + eth_src + vlan + (b"\x86\xdd" if family == 6 else b"\x08\x00") + l3


def tcp_segment(eth_src: bytes, eth_dst: bytes, src: bytes, dst: bytes, sport: int, dport: int, seq: int,
                ack: int, flags: int, payload: bytes = b"", ttl: int = 64, vlan: bytes = b"", window: int = 0) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0) + payload
    csum = l4_checksum(src, dst, TCP, tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    return ethernet(eth_src, eth_dst, 6 if len(src) == 16 else 4, ip_header(src, dst, TCP, tcp, ttl), vlan)


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
    to_sender = [tcp_segment(trigger.eth_dst, trigger.eth_src, trigger.dst, trigger.src, trigger.dport,
                             trigger.sport, trigger.ack, end, RST | ACK, vlan=trigger.vlan, window=min(low + i, high))
                 for i in range(count)]
    to_receiver = [tcp_segment(trigger.eth_src, trigger.eth_dst, trigger.src, trigger.dst, trigger.sport,
                               trigger.dport, seq, trigger.ack, RST | ACK, vlan=trigger.vlan)
                   for seq in sorted({trigger.seq, end})]
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
