"""Minimal, bounds-checked parsing of Ethernet / VLAN / IPv4 / IPv6 / TCP / UDP.

The hot path of the middlebox: no scapy, no per-field objects beyond one
``Packet``. Anything malformed (truncated headers, lengths that point past
the buffer, IHL/data offset below the minimum, an IPv6 extension-header
chain that runs off the end) yields ``None`` instead of an exception.

What a censor must not be blind to, and so is parsed here:

* any number of stacked 802.1Q / 802.1ad (QinQ) tags; the raw tags are kept
  so that injected packets carry the flow's tags (``Packet.vlan``);
* IPv6 with its extension headers (hop-by-hop, routing, destination
  options, AH, fragment);
* IP fragments, v4 and v6: a fragment is returned with ``frag`` set
  (identification, byte offset, more-fragments) and its raw data as
  payload; :mod:`middlebox.defrag` puts datagrams back together before any
  classifier sees them, and :func:`parse_l4` then reads the transport header.

Flow keys are raw bytes, ``proto(1) + src + dst + sport(2) + dport(2)``
(13 bytes for IPv4, 37 for IPv6), so the engine's fast path can cut them
straight out of a frame.
"""

from __future__ import annotations

import functools
import socket
import struct

TCP, UDP, GRE, ICMP, ESP, ICMPV6 = 6, 17, 47, 1, 50, 58
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ETH_IPV4, ETH_IPV6 = b"\x08\x00", b"\x86\xdd"
VLAN_TPIDS = (b"\x81\x00", b"\x88\xa8", b"\x91\x00")
MAX_VLAN_TAGS = 8              # more than any real network stacks; bounds the work per frame
MAX_EXT_HEADERS = 8            # IPv6 extension headers followed before giving up
TCP_OPT_MD5 = 19               # RFC 2385: the server drops segments whose signature fails

_KEY4 = struct.Struct(">B4s4sHH")
_KEY6 = struct.Struct(">B16s16sHH")


class Packet:
    __slots__ = ("src", "dst", "proto", "sport", "dport", "payload", "flags", "seq", "ack",
                 "ip_id", "ttl", "eth_src", "eth_dst", "key", "l4_offset", "family", "vlan", "frag",
                 "window", "tcp_options", "frame", "l3_offset", "l4_end")

    def __init__(self, src: bytes, dst: bytes, proto: int, sport: int, dport: int, payload: bytes,
                 flags: int = 0, seq: int = 0, ack: int = 0, ip_id: int = 0, ttl: int = 64,
                 eth_src: bytes = b"", eth_dst: bytes = b""):
        self.src, self.dst, self.proto = src, dst, proto
        self.sport, self.dport, self.payload = sport, dport, payload
        self.flags, self.seq, self.ack = flags, seq, ack
        self.ip_id, self.ttl = ip_id, ttl
        self.eth_src, self.eth_dst = eth_src, eth_dst
        self.family = 6 if len(src) == 16 else 4
        self.key = (_KEY6 if self.family == 6 else _KEY4).pack(proto, src, dst, sport, dport)
        self.l4_offset = 0
        self.l3_offset = 0
        self.l4_end = 0
        self.vlan = b""              # raw 802.1Q/802.1ad tags (TPID + TCI each), outermost first
        self.frag = None             # (identification, byte offset, more fragments) of an IP fragment
        self.window = 0
        self.tcp_options = b""
        self.frame = b""             # the frame it came in (for checksum checks and re-injection)

    @property
    def src_ip(self) -> str:
        return ip_text(self.src)

    @property
    def dst_ip(self) -> str:
        return ip_text(self.dst)

    def tcp_option_kinds(self) -> list[int]:
        """Kinds of the TCP options present (stops at a malformed option)."""
        kinds, opts, pos = [], self.tcp_options, 0
        while pos < len(opts):
            kind = opts[pos]
            if kind == 0:
                break
            if kind == 1:
                pos += 1
                continue
            if pos + 1 >= len(opts) or opts[pos + 1] < 2:
                break
            kinds.append(kind)
            pos += opts[pos + 1]
        return kinds

    def __repr__(self) -> str:
        return (f"Packet({self.src_ip}:{self.sport} -> {self.dst_ip}:{self.dport} proto={self.proto} "
                f"flags={self.flags:#x} len={len(self.payload)}{' frag' if self.frag else ''})")


def reverse_key(key: bytes) -> bytes:
    """The key of the opposite direction of the same flow (v4 or v6)."""
    n = (len(key) - 5) // 2
    return key[0:1] + key[1 + n:1 + 2 * n] + key[1:1 + n] + key[-2:] + key[-4:-2]


def parse_ethernet(frame: bytes) -> Packet | None:
    if _parse_common is not None:
        pkt = _parse_common(frame)       # the common case in C (_fastpath.c); the rest below
        if pkt is not None:
            return pkt
    if len(frame) < 14:
        return None
    ethertype = frame[12:14]
    offset = 14
    tags = 0
    while ethertype in VLAN_TPIDS:
        if tags == MAX_VLAN_TAGS or len(frame) < offset + 4:
            return None
        ethertype = frame[offset + 2:offset + 4]
        offset += 4
        tags += 1
    if ethertype == ETH_IPV4:
        pkt = parse_ipv4(frame, offset)
    elif ethertype == ETH_IPV6:
        pkt = parse_ipv6(frame, offset)
    else:
        return None
    if pkt is not None:
        pkt.eth_dst, pkt.eth_src = frame[0:6], frame[6:12]
        pkt.vlan = frame[12:offset - 2] if tags else b""
        pkt.frame = frame
    return pkt


_IPV4 = struct.Struct(">BxHHHBB2x4s4s")       # vihl, total, id, frag, ttl, proto, src, dst
_IPV6 = struct.Struct(">IHBB16s16s")           # vtcfl, payload length, next header, hop limit, src, dst
_TCP = struct.Struct(">HHIIBBH")                # sport, dport, seq, ack, data offset, flags, window
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
    if frag & 0x3FFF:          # offset or more-fragments set: a fragment
        pkt = Packet(src, dst, proto, 0, 0, bytes(buf[l4:end]), ip_id=ip_id, ttl=ttl)
        pkt.frag = (ip_id, (frag & 0x1FFF) * 8, bool(frag & 0x2000))
    else:
        pkt = parse_l4(src, dst, proto, buf, l4, end, ip_id, ttl)
    if pkt is not None:
        pkt.l3_offset = offset
    return pkt


def parse_ipv6(buf: bytes, offset: int = 0) -> Packet | None:
    if len(buf) < offset + 40:
        return None
    vtcfl, plen, nxt, hlim, src, dst = _IPV6.unpack_from(buf, offset)
    if vtcfl >> 28 != 6:
        return None
    end = len(buf) if plen == 0 else min(offset + 40 + plen, len(buf))
    pos = offset + 40
    frag = None
    for _ in range(MAX_EXT_HEADERS + 1):
        if nxt in (0, 43, 60):                       # hop-by-hop, routing, destination options
            if pos + 8 > end:
                return None
            nxt, hlen = buf[pos], (buf[pos + 1] + 1) * 8
        elif nxt == 51:                              # authentication header
            if pos + 8 > end:
                return None
            nxt, hlen = buf[pos], (buf[pos + 1] + 2) * 4
        elif nxt == 44:                              # fragment header (RFC 8200 section 4.5)
            if pos + 8 > end:
                return None
            off_m, ident = struct.unpack_from(">HI", buf, pos + 2)
            nxt, hlen = buf[pos], 8
            frag = (ident, off_m & 0xFFF8, bool(off_m & 1))
        else:
            break
        pos += hlen
        if pos > end:
            return None
    else:
        return None                                  # an endless chain: drop, as hosts do
    if frag is not None and (frag[1] or frag[2]):
        pkt = Packet(src, dst, nxt, 0, 0, bytes(buf[pos:end]), ip_id=frag[0], ttl=hlim)
        pkt.frag = frag
    else:
        pkt = parse_l4(src, dst, nxt, buf, pos, end, 0, hlim)
    if pkt is not None:
        pkt.l3_offset = offset
    return pkt


def parse_l4(src: bytes, dst: bytes, proto: int, buf: bytes, l4: int, end: int, ip_id: int = 0,
             ttl: int = 64) -> Packet | None:
    """The transport header and payload in ``buf[l4:end]``; also used on a
    datagram that :mod:`middlebox.defrag` put back together."""
    if proto == TCP:
        if end - l4 < 20:
            return None
        sport, dport, seq, ack, doff, flags, window = _TCP.unpack_from(buf, l4)
        doff = (doff >> 4) * 4
        if doff < 20 or l4 + doff > end:
            return None
        pkt = Packet(src, dst, proto, sport, dport, bytes(buf[l4 + doff:end]), flags, seq, ack, ip_id, ttl)
        pkt.window = window
        if doff > 20:
            pkt.tcp_options = bytes(buf[l4 + 20:l4 + doff])
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
    pkt.l4_end = end
    return pkt


def ip_start(frame: bytes) -> tuple[int, bytes]:
    """Where the frame's network header starts and its ethertype, the frame
    untagged or with one 802.1Q tag (what the border switch's rules match
    through; deeper stacks are parse_ethernet's)."""
    if frame[12:14] == b"\x81\x00":
        return 18, frame[16:18]
    return 14, frame[12:14]


def plain_synack(frame: bytes) -> bool:
    """Whether *frame* is a whole TCP SYN/ACK (SYN and ACK set) that Open
    vSwitch parses down to its TCP flags: untagged or with one 802.1Q tag,
    IPv4 (not a fragment, lengths consistent, nothing cut off) or IPv6 with
    TCP as the first next header. The inline switch copies those to the
    middlebox instead of holding them (controller/pipeline.py); this errs
    only towards "no" (an IPv6 SYN/ACK behind extension headers is copied
    too, and the middlebox then re-sends a duplicate the client ignores),
    never towards taking a held frame for a copy."""
    at, ethertype = ip_start(frame)
    if ethertype == ETH_IPV4:
        if len(frame) < at + 20 or frame[at] >> 4 != 4:
            return False
        ihl, total = (frame[at] & 0x0F) * 4, frame[at + 2] << 8 | frame[at + 3]
        if ihl < 20 or frame[at + 9] != TCP or frame[at + 6] & 0x3F or frame[at + 7] or len(frame) < at + total:
            return False                                  # not TCP, a fragment (MF or an offset), cut off
        l4, end = at + ihl, at + total
    elif ethertype == ETH_IPV6:
        if len(frame) < at + 40 or frame[at] >> 4 != 6 or frame[at + 6] != TCP:
            return False
        l4, end = at + 40, at + 40 + (frame[at + 4] << 8 | frame[at + 5])
        if len(frame) < end:
            return False
    else:
        return False
    doff = (frame[l4 + 12] >> 4) * 4 if end - l4 >= 20 else 0
    if doff < 20 or l4 + doff > end:
        return False
    return frame[l4 + 13] & (SYN | ACK) == SYN | ACK


def ip_bytes(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


@functools.lru_cache(maxsize=4096)
def ip_text(raw: bytes) -> str:
    # Cached: each verdict names its flow's two addresses, and the same
    # clients and servers come back flow after flow.
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


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


def l4_checksum_ok(pkt: Packet) -> bool:
    """Whether the TCP/UDP checksum of an unfragmented packet is right.
    Censors differ: the GFW does not check (Geneva's bad-checksum insertion
    packets reach its state machine), so this runs only where a profile asks."""
    if not pkt.frame or pkt.frag is not None or pkt.l4_end <= pkt.l4_offset:
        return True
    segment = bytes(pkt.frame[pkt.l4_offset:pkt.l4_end])
    if pkt.proto == UDP and len(segment) >= 8 and segment[6:8] == b"\x00\x00" and pkt.family == 4:
        return True                     # IPv4 UDP without a checksum
    return l4_checksum(pkt.src, pkt.dst, pkt.proto, segment) == 0


# The optional C parser of the common frame (middlebox/_fastpath.c); the
# Python parser above stays the definition, and tests check they agree.
try:
    from . import _fastpath
    if set(_fastpath.PACKET_FIELDS) != set(Packet.__slots__):
        raise ImportError("_fastpath was built for another Packet")
    _fastpath.setup_packet(Packet)
    _parse_common = _fastpath.parse
except ImportError:           # pragma: no cover - not built: every frame takes the Python parser
    _parse_common = None
