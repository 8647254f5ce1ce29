"""Forged packets the censor injects: TCP RSTs and DNS answers.

Pure functions: a parsed trigger packet in, Ethernet frames out. Sequence
numbers come from the trigger, so the endpoints accept the forgeries (as
on-path injectors like the GFW's must: it sends RST+ACK with sequence
numbers taken from the offending packet).
"""

from __future__ import annotations

import socket
import struct

from .classifiers.plaintext import parse_dns_query
from .packet import ACK, RST, TCP, UDP, Packet


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, proto: int, l4: bytes, ttl: int = 64, ip_id: int = 0) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ip_id, 0x4000, ttl, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + l4


def _l4_checksum(src: bytes, dst: bytes, proto: int, l4: bytes) -> int:
    return checksum(src + dst + struct.pack("!BBH", 0, proto, len(l4)) + l4)


def tcp_segment(eth_src: bytes, eth_dst: bytes, src: bytes, dst: bytes, sport: int, dport: int, seq: int,
                ack: int, flags: int, payload: bytes = b"", ttl: int = 64) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 0, 0, 0) + payload
    csum = _l4_checksum(src, dst, TCP, tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    return eth_dst + eth_src + b"\x08\x00" + _ipv4(src, dst, TCP, tcp, ttl)


def tcp_resets(trigger: Packet) -> list[bytes]:
    """RST+ACK to both ends of the trigger's connection."""
    if trigger.proto != TCP:
        return []
    end = trigger.seq + len(trigger.payload)
    to_sender = tcp_segment(trigger.eth_dst, trigger.eth_src, trigger.dst, trigger.src, trigger.dport,
                            trigger.sport, trigger.ack, end, RST | ACK)
    to_receiver = tcp_segment(trigger.eth_src, trigger.eth_dst, trigger.src, trigger.dst, trigger.sport,
                              trigger.dport, end, trigger.ack, RST | ACK)
    return [to_sender, to_receiver]


def dns_answer(query: Packet, answer_ip: str, ttl: int = 300) -> bytes | None:
    """A forged A answer to a DNS query, from the queried server's address."""
    if query.proto != UDP:
        return None
    parsed = parse_dns_query(query.payload)
    if parsed is None:
        return None
    question = query.payload[12:parsed["question_end"]]
    flags = 0x8180 | (struct.unpack_from("!H", query.payload, 2)[0] & 0x0100)   # QR, RA; copy RD
    dns = struct.pack("!6H", parsed["id"], flags, 1, 1, 0, 0) + question
    dns += struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + socket.inet_aton(answer_ip)
    udp = struct.pack("!HHHH", query.dport, query.sport, 8 + len(dns), 0) + dns
    csum = _l4_checksum(query.dst, query.src, UDP, udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return query.eth_src + query.eth_dst + b"\x08\x00" + _ipv4(query.dst, query.src, UDP, udp)
