"""DTLS ClientHellos: OpenConnect/AnyConnect's data channel, WebRTC (Snowflake).

Source: RFC 6347 section 4.1 (record header: type 22, version, epoch,
sequence number, length) and 4.2.1 (handshake header with message sequence
and fragment offset; a cookie after the session id); RFC 9147 for DTLS 1.3,
which keeps the DTLS 1.2 record version on the ClientHello. OpenConnect's
legacy "DTLS 0.9" (Cisco's pre-standard, version 0x0100) is accepted too.
The detection carries SNI, ALPN and JA3/JA4 (transport ``d``): the TSPU has
filtered Snowflake's default pion/dtls ClientHello by JA4 since 2026-03-30.
Recognised by structure, not by port.

WebRTC (RFC 8445 ICE, RFC 5763/8842 DTLS-SRTP) puts DTLS on the 5-tuple its
STUN connectivity checks opened, so a flow's first datagrams are STUN, told
apart from DTLS by their first byte (RFC 7983: 0-3 STUN, 20-63 DTLS) and
skipped. The ClientHello may come from either end: the answerer of the SDP
exchange takes the DTLS client role, in Snowflake the proxy, outside; and
whichever peer's STUN check arrived first is the censor's flow "client". So
both directions are read, and the detection says which one sent the hello.
"""

from __future__ import annotations

import struct

from ..packet import UDP
from .base import C2S, DONE, Classifier, Detection
from .fingerprint import ja3, ja4
from .tls import parse_client_hello_body

DTLS_VERSIONS = frozenset({0xFEFF, 0xFEFD, 0xFEFC, 0x0100})
STUN_MAGIC = b"\x21\x12\xa4\x42"          # RFC 5389 section 6, bytes 4-7 of every STUN message


def is_stun(payload: bytes) -> bool:
    """A STUN message (RFC 5389 section 6): the two top bits zero, a length
    that is a multiple of 4 and fits, and the magic cookie."""
    if len(payload) < 20 or payload[0] > 3 or payload[4:8] != STUN_MAGIC:
        return False
    length = struct.unpack_from(">H", payload, 2)[0]
    return length % 4 == 0 and 20 + length == len(payload)


def parse_dtls_client_hello(payload: bytes) -> dict | None:
    """The ClientHello of a DTLS datagram's first record, or None."""
    if len(payload) < 13 + 12 or payload[0] != 22:
        return None
    version, epoch = struct.unpack_from(">HH", payload, 1)
    length = struct.unpack_from(">H", payload, 11)[0]
    if version not in DTLS_VERSIONS or epoch != 0 or 13 + length > len(payload):
        return None
    hs = payload[13:13 + length]
    if len(hs) < 12 or hs[0] != 1:                   # a whole handshake header, of a ClientHello
        return None
    frag_offset = int.from_bytes(hs[6:9], "big")
    frag_len = int.from_bytes(hs[9:12], "big")
    if frag_offset != 0 or 12 + frag_len > len(hs):
        return None
    hello = parse_client_hello_body(hs[12:12 + frag_len], dtls=True)
    if hello is None or hello["version"] not in DTLS_VERSIONS:
        return None
    return hello


class DTLS(Classifier):
    name = "dtls"
    transports = frozenset({UDP})

    # ICE's checks come before the hello: a few per candidate pair, both ways.
    budget = 30

    def update(self, state, flow, pkt, direction):
        if not pkt.payload or is_stun(pkt.payload):
            return None
        hello = parse_dtls_client_hello(pkt.payload)
        if hello is None:
            return DONE
        return Detection("dtls", "client-hello", 1.0, {"sni": hello["sni"], "alpn": hello["alpn"],
                                                       "ja3": ja3(hello), "ja4": ja4(hello, "d"),
                                                       "hello_from": "client" if direction == C2S else "server"})
