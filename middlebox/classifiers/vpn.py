"""Classic VPN protocols: IPsec (IKE, ESP), L2TP, PPTP (+ enhanced GRE).

Signatures follow the RFCs and nDPI's dissectors (``src/lib/protocols``:
``ipsec.c``, ``l2tp.c``, ``pptp.c``); the structure is checked, never the
port alone:

* IKE (RFC 2408 section 3.1, RFC 7296 section 3.1): 28-byte header, version
  byte at offset 17 is 0x10 (IKEv1) or 0x20 (IKEv2), the length field at
  offset 24 equals the message length, a non-zero initiator SPI; on UDP
  4500 the message follows a 4-byte zero non-ESP marker (RFC 3948).
* ESP (IP protocol 50): recognised by the protocol number itself.
* L2TP (RFC 2661 section 3.1): control messages have T, L and S set,
  version 2, and the length field equals the datagram length.
* PPTP (RFC 2637 section 2): control messages carry the magic cookie
  ``1A 2B 3C 4D`` at offset 4 and their own length at offset 0; data
  travels in enhanced GRE (version 1, protocol 0x880B).
"""

from __future__ import annotations

import struct

from ..packet import GRE, TCP, UDP
from .base import DONE, Classifier, Detection

ESP = 50
IKE_EXCHANGES = {2, 4, 5, 6, 32, 34, 35, 36, 37}
PPTP_MAGIC = b"\x1a\x2b\x3c\x4d"


def parse_ike(payload: bytes) -> dict | None:
    if len(payload) >= 32 and payload[:4] == b"\x00\x00\x00\x00":
        payload = payload[4:]                    # NAT-T non-ESP marker
    if len(payload) < 28:
        return None
    version, exchange = payload[17], payload[18]
    if version not in (0x10, 0x20) or exchange not in IKE_EXCHANGES:
        return None
    if struct.unpack_from(">I", payload, 24)[0] != len(payload) or payload[:8] == b"\0" * 8:
        return None
    return {"version": version >> 4, "exchange": exchange}


class IPsec(Classifier):
    name = "ipsec"
    transports = frozenset({UDP, ESP})

    def update(self, state, flow, pkt, direction):
        if pkt.proto == ESP:
            return Detection("ipsec", "esp", 0.9, {})
        if not pkt.payload:
            return None
        ike = parse_ike(pkt.payload)
        if ike is None:
            return DONE
        return Detection("ipsec", "ike", 1.0, ike)


def parse_l2tp_control(payload: bytes) -> dict | None:
    if len(payload) < 12:
        return None
    flags, version = payload[0], payload[1] & 0x0F
    if version != 2 or flags & 0xC8 != 0xC8:       # T, L and S bits
        return None
    length = struct.unpack_from(">H", payload, 2)[0]
    if length != len(payload):
        return None
    msg_type = None
    pos = 12 + (2 if flags & 0x02 else 0)          # offset size field
    if pos + 8 <= len(payload):
        attr = struct.unpack_from(">HHHH", payload, pos)
        if attr[1] == 0 and attr[2] == 0:          # IETF vendor, Message Type AVP
            msg_type = attr[3]
    return {"message_type": msg_type}


class L2TP(Classifier):
    name = "l2tp"
    transports = frozenset({UDP})

    def update(self, state, flow, pkt, direction):
        if not pkt.payload:
            return None
        ctl = parse_l2tp_control(pkt.payload)
        if ctl is None:
            return DONE
        return Detection("l2tp", "control", 1.0, ctl)


class PPTP(Classifier):
    name = "pptp"
    transports = frozenset({TCP, GRE})

    def update(self, state, flow, pkt, direction):
        p = pkt.payload
        if pkt.proto == GRE:
            # Enhanced GRE: version 1, key present, protocol PPP (0x880B).
            if len(p) >= 8 and p[1] & 0x07 == 1 and p[2:4] == b"\x88\x0b":
                return Detection("pptp", "gre", 0.9, {})
            return DONE
        if not p:
            return None
        if len(p) >= 12 and p[4:8] == PPTP_MAGIC and struct.unpack_from(">H", p, 0)[0] == len(p) \
                and struct.unpack_from(">H", p, 2)[0] == 1:
            return Detection("pptp", "control", 1.0, {"message": struct.unpack_from(">H", p, 8)[0]})
        return DONE
