"""TLS ClientHello: SNI, ALPN, ESNI/ECH; and Tor's TLS fingerprint.

Sources: RFC 8446 section 4.1.2 (ClientHello layout), RFC 6066 section 3
(server_name). Censors' use: the GFW blocks by SNI and blocked ESNI
(extension 0xffce) outright since 2020-07 for 120-180 s on the 3-tuple
(Bock et al., GFW Report, "Exposing and Circumventing China's Censorship of
ESNI", 2020); keyword/SNI hits put the 3-tuple in a 90 s penalty box.

Only the first client data packet is parsed (as the GFW does); a
ClientHello split across segments is parsed as far as it goes.

Tor (``Tor`` classifier): little-t tor's client hello names a random
``www.<base32>.com|net`` server and offers no ALPN. This is a heuristic of
limited power: it is the *passive* half of the GFW's Tor detection, which is
confirmed by an active probe (Ensafi et al., IMC 2015); pluggable
transports (obfs4) are caught by the FET rule or probing instead.
"""

from __future__ import annotations

import re
import struct

from ..packet import TCP
from .base import C2S, DONE, Classifier, Detection

EXT_SNI, EXT_ALPN, EXT_SUPPORTED_VERSIONS, EXT_ESNI, EXT_ECH = 0, 16, 43, 0xFFCE, 0xFE0D


def parse_client_hello_body(body: bytes) -> dict | None:
    """Parse a ClientHello handshake body (after the 4-byte handshake header)."""
    try:
        pos = 2 + 32                                   # legacy_version, random
        sid_len = body[pos]
        pos += 1 + sid_len
        cs_len = struct.unpack_from(">H", body, pos)[0]
        ciphers = [struct.unpack_from(">H", body, pos + 2 + i)[0] for i in range(0, cs_len - 1, 2)]
        pos += 2 + cs_len
        comp_len = body[pos]
        pos += 1 + comp_len
        info = {"version": struct.unpack_from(">H", body, 0)[0], "ciphers": ciphers, "extensions": [],
                "sni": None, "alpn": []}
        if pos + 2 > len(body):
            return info
        ext_end = min(len(body), pos + 2 + struct.unpack_from(">H", body, pos)[0])
        pos += 2
        while pos + 4 <= ext_end:
            etype, elen = struct.unpack_from(">HH", body, pos)
            data = body[pos + 4:pos + 4 + elen]
            info["extensions"].append(etype)
            if etype == EXT_SNI and len(data) >= 5 and data[2] == 0:
                name_len = struct.unpack_from(">H", data, 3)[0]
                info["sni"] = data[5:5 + name_len].decode("ascii", "replace").lower()
            elif etype == EXT_ALPN and len(data) >= 2:
                p = 2
                while p < len(data):
                    n = data[p]
                    info["alpn"].append(data[p + 1:p + 1 + n].decode("ascii", "replace"))
                    p += 1 + n
            pos += 4 + elen
        return info
    except (IndexError, struct.error):
        return None


def parse_client_hello(payload: bytes) -> dict | None:
    """ClientHello fields from a TLS record, or None if it is not one."""
    if len(payload) < 9 or payload[0] != 0x16 or payload[1] != 0x03 or payload[5] != 0x01:
        return None
    return parse_client_hello_body(payload[9:9 + struct.unpack_from(">I", b"\0" + payload[6:9])[0]])


class TLS(Classifier):
    name = "tls"
    transports = frozenset({TCP})

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        hello = parse_client_hello(pkt.payload)
        if hello is None:
            return DONE
        detail = {"sni": hello["sni"], "alpn": hello["alpn"]}
        if EXT_ESNI in hello["extensions"]:
            return Detection("tls", "esni", 1.0, detail)
        if EXT_ECH in hello["extensions"]:
            return Detection("tls", "ech", 1.0, detail)
        return Detection("tls", "client-hello", 1.0, detail)


TOR_SNI = re.compile(r"^www\.[a-z2-7]{4,25}\.(com|net)$")


class Tor(Classifier):
    name = "tor"
    transports = frozenset({TCP})

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        hello = parse_client_hello(pkt.payload)
        if hello is None or not hello["sni"]:
            return DONE
        if TOR_SNI.match(hello["sni"]) and not hello["alpn"]:
            return Detection("tor", "tls-fingerprint", 0.6, {"sni": hello["sni"]})
        return DONE
