"""Iran's protocol allowlist ("protocol filter"), February 2020.

Source: Bock, Fax, Reese, Singh, Levin, "Detecting and Evading
Censorship-in-Depth: A Case Study of Iran's Protocol Whitelister", FOCI
2020, sections 3-4. Model: on TCP ports 53, 80 and 443 only, the first two
client data packets must match a protocol fingerprint (DNS over TCP, HTTP:
at least 8 bytes starting with a method, or TLS: a plausible 5-byte record
header); otherwise the client's packets are dropped for 60 seconds (the
profile rule's ``residual``). The port scope is the censor's own, as
measured; what is checked on those ports is the content.
"""

from __future__ import annotations

import struct

from ..packet import TCP
from .base import C2S, DONE, Classifier, Detection
from .plaintext import parse_dns_query

HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ")


def allowlisted(payload: bytes) -> str | None:
    """Which allowed protocol *payload* looks like, or None."""
    if len(payload) >= 8 and payload.startswith(HTTP_METHODS):
        return "http"
    if len(payload) >= 5 and 0x14 <= payload[0] <= 0x17 and payload[1] == 0x03 and payload[2] <= 0x04:
        return "tls"
    if len(payload) >= 2 and struct.unpack_from(">H", payload, 0)[0] == len(payload) - 2 \
            and parse_dns_query(payload[2:]):
        return "dns"
    return None


class Allowlist(Classifier):
    name = "allowlist"
    transports = frozenset({TCP})
    policy = True
    reports = frozenset({"non-allowlisted"})
    DEFAULTS = {"ports": [53, 80, 443], "packets": 2}

    def configure(self):
        self.ports = frozenset(int(p) for p in self.params["ports"])

    def start(self, flow):
        return [0] if flow.server_port in self.ports else None

    def update(self, seen, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        if allowlisted(pkt.payload) is None:
            return Detection("non-allowlisted", "protocol-allowlist", 1.0, {"packet": seen[0] + 1})
        seen[0] += 1
        return DONE if seen[0] >= self.params["packets"] else None
