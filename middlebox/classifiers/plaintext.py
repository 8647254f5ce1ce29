"""Protocols that name themselves in clear: DNS queries, SSH banners, HTTP requests.

* DNS (RFC 1035 section 4.1): the GFW reads query names and injects forged
  A answers (Anonymous, "Towards a Comprehensive Picture of the Great
  Firewall's DNS Censorship", FOCI 2014). Recognised by structure (one
  question, no answers, well-formed labels), not by port 53.
* SSH (RFC 4253 section 4.2): each side starts with ``SSH-2.0-...``.
* HTTP/1.x: a method, a path and ``HTTP/1.``; the Host header is what
  keyword/host censorship reads.
"""

from __future__ import annotations

import re
import struct

from ..packet import TCP, UDP
from .base import C2S, DONE, Classifier, Detection

LABEL = re.compile(rb"^[A-Za-z0-9_*-]{1,63}$")


def parse_dns_query(payload: bytes) -> dict | None:
    """Query name and type of a DNS query message, or None."""
    if len(payload) < 17:
        return None
    ident, flags, qd, an, ns, ar = struct.unpack_from(">6H", payload, 0)
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1 or an or ns or ar > 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(payload):
            return None
        n = payload[pos]
        if n == 0:
            pos += 1
            break
        if n > 63 or pos + 1 + n > len(payload):
            return None
        label = payload[pos + 1:pos + 1 + n]
        if not LABEL.match(label):
            return None
        labels.append(label.decode("ascii").lower())
        pos += 1 + n
    if pos + 4 > len(payload) or not labels:
        return None
    qtype, qclass = struct.unpack_from(">HH", payload, pos)
    if qclass not in (1, 255):
        return None
    rest = len(payload) - pos - 4
    if (ar == 0 and rest != 0) or (ar == 1 and rest < 11):
        return None
    return {"id": ident, "qname": ".".join(labels), "qtype": qtype, "question_end": pos + 4}


class DNS(Classifier):
    name = "dns"
    transports = frozenset({UDP})

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        query = parse_dns_query(pkt.payload)
        if query is None:
            return DONE
        return Detection("dns", "query", 1.0, {"qname": query["qname"], "qtype": query["qtype"]})


SSH_BANNER = re.compile(rb"^SSH-(2\.0|1\.99|1\.5)-[\x21-\x7e]+")


class SSH(Classifier):
    name = "ssh"
    transports = frozenset({TCP})

    def start(self, flow):
        return [0]

    def update(self, seen, flow, pkt, direction):
        if not pkt.payload:
            return None
        m = SSH_BANNER.match(pkt.payload)
        if m:
            return Detection("ssh", "banner", 1.0, {"banner": m.group(0).decode("ascii")})
        seen[0] += 1
        return DONE if seen[0] >= 2 else None


HTTP_REQUEST = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH) \S+ HTTP/1\.[01]\r\n")
HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([^\r\n:]+)", re.I)


class HTTP(Classifier):
    name = "http"
    transports = frozenset({TCP})

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        m = HTTP_REQUEST.match(pkt.payload)
        if not m:
            return DONE
        host = HOST_HEADER.search(pkt.payload)
        return Detection("http", "request", 1.0,
                         {"method": m.group(1).decode(), "host": host.group(1).decode("ascii", "replace").lower() if host else None})
