"""DTLS ClientHellos: OpenConnect/AnyConnect's data channel, WebRTC (Snowflake).

Source: RFC 6347 section 4.1 (record header: type 22, version, epoch,
sequence number, length) and 4.2.1 (handshake header with message sequence
and fragment offset; a cookie after the session id); RFC 9147 for DTLS 1.3,
which keeps the DTLS 1.2 record version on the ClientHello. OpenConnect's
legacy "DTLS 0.9" (Cisco's pre-standard, version 0x0100) is accepted too.
The detection carries SNI, ALPN and JA3/JA4 (transport ``d``): the TSPU has
filtered Snowflake's default pion/dtls ClientHello by JA4 since 2026-03-30.
Recognised by structure, not by port.
"""

from __future__ import annotations

import struct

from ..packet import UDP
from .base import C2S, DONE, Classifier, Detection
from .fingerprint import ja3, ja4
from .tls import parse_client_hello_body

DTLS_VERSIONS = frozenset({0xFEFF, 0xFEFD, 0xFEFC, 0x0100})


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

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        hello = parse_dtls_client_hello(pkt.payload)
        if hello is None:
            return DONE
        return Detection("dtls", "client-hello", 1.0, {"sni": hello["sni"], "alpn": hello["alpn"],
                                                       "ja3": ja3(hello), "ja4": ja4(hello, "d")})
