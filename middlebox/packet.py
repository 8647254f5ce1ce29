"""Minimal, bounds-checked parsing of Ethernet/IPv4/TCP/UDP.

The hot path of the middlebox: no scapy, no per-field objects beyond one
``Packet``. Anything malformed (truncated headers, lengths that point past
the buffer, IHL/data offset below the minimum) yields ``None`` instead of an
exception; fragments after the first carry no transport header and are
reported with ports 0.

Flow keys are raw bytes, ``proto(1) + src(4) + dst(4) + sport(2) + dport(2)``,
so the engine's fast path can cut them straight out of a frame.
"""

from __future__ import annotations

import socket
import struct

TCP, UDP, GRE, ICMP = 6, 17, 47, 1
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_H = struct.Struct(">H")
_HH = struct.Struct(">HH")
_II = struct.Struct(">II")
_KEY = struct.Struct(">B4s4sHH")


class Packet:
    __slots__ = ("src", "dst", "proto", "sport", "dport", "payload", "flags", "seq", "ack",
                 "ip_id", "ttl", "eth_src", "eth_dst", "key", "l4_offset")

    def __init__(self, src: bytes, dst: bytes, proto: int, sport: int, dport: int, payload: bytes,
                 flags: int = 0, seq: int = 0, ack: int = 0, ip_id: int = 0, ttl: int = 64,
                 eth_src: bytes = b"", eth_dst: bytes = b""):
        self.src, self.dst, self.proto = src, dst, proto
        self.sport, self.dport, self.payload = sport, dport, payload
        self.flags, self.seq, self.ack = flags, seq, ack
        self.ip_id, self.ttl = ip_id, ttl
        self.eth_src, self.eth_dst = eth_src, eth_dst
        self.key = _KEY.pack(proto, src, dst, sport, dport)
        self.l4_offset = 0

    @property
    def src_ip(self) -> str:
        return socket.inet_ntoa(self.src)

    @property
    def dst_ip(self) -> str:
        return socket.inet_ntoa(self.dst)

    def __repr__(self) -> str:
        return (f"Packet({self.src_ip}:{self.sport} -> {self.dst_ip}:{self.dport} proto={self.proto} "
                f"flags={self.flags:#x} len={len(self.payload)})")


def reverse_key(key: bytes) -> bytes:
    """The key of the opposite direction of the same flow."""
    return key[0:1] + key[5:9] + key[1:5] + key[11:13] + key[9:11]


def parse_ethernet(frame: bytes) -> Packet | None:
    if len(frame) < 14:
        return None
    ethertype = frame[12:14]
    offset = 14
    if ethertype == b"\x81\x00":  # one 802.1Q tag
        if len(frame) < 18:
            return None
        ethertype = frame[16:18]
        offset = 18
    if ethertype != b"\x08\x00":
        return None
    pkt = parse_ipv4(frame, offset)
    if pkt is not None:
        pkt.eth_dst, pkt.eth_src = frame[0:6], frame[6:12]
    return pkt


_IPV4 = struct.Struct(">BxHHHBB2x4s4s")       # vihl, total, id, frag, ttl, proto, src, dst
_TCP = struct.Struct(">HHIIBB")                 # sport, dport, seq, ack, data offset, flags
_UDP = struct.Struct(">HHH")                    # sport, dport, length


def parse_ipv4(buf: bytes, offset: int = 0) -> Packet | None:
    if len(buf) < offset + 20:
        return None
    vihl, total, ip_id, frag, ttl, proto, src, dst = _IPV4.unpack_from(buf, offset)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(buf) < offset + ihl or total < ihl:
        return None
    end = min(offset + total, len(buf))  # a total length past the capture: use what we have
    l4 = offset + ihl
    if frag & 0x1FFF:  # not the first fragment: no transport header here
        return Packet(src, dst, proto, 0, 0, bytes(buf[l4:end]), ip_id=ip_id, ttl=ttl)
    if proto == TCP:
        if end - l4 < 20:
            return None
        sport, dport, seq, ack, doff, flags = _TCP.unpack_from(buf, l4)
        doff = (doff >> 4) * 4
        if doff < 20 or l4 + doff > end:
            return None
        pkt = Packet(src, dst, proto, sport, dport, bytes(buf[l4 + doff:end]), flags, seq, ack, ip_id, ttl)
    elif proto == UDP:
        if end - l4 < 8:
            return None
        sport, dport, ulen = _UDP.unpack_from(buf, l4)
        if ulen < 8:
            return None
        pkt = Packet(src, dst, proto, sport, dport, bytes(buf[l4 + 8:min(l4 + ulen, end)]), 0, 0, 0, ip_id, ttl)
    else:
        pkt = Packet(src, dst, proto, 0, 0, bytes(buf[l4:end]), ip_id=ip_id, ttl=ttl)
    pkt.l4_offset = l4
    return pkt


def ip_bytes(text: str) -> bytes:
    return socket.inet_aton(text)


def ip_text(raw: bytes) -> str:
    return socket.inet_ntoa(raw)
