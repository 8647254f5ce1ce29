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

from tunnelwall.base.dnsmsg import parse_dns_query

from ..packet import TCP, UDP
from .base import C2S, DONE, Classifier, Detection

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
SSH_MAX_BANNER = 255          # RFC 4253 section 4.2: the identification line is at most 255 bytes


class SSH(Classifier):
    name = "ssh"
    transports = frozenset({TCP})
    reads_stream = True

    def start(self, flow):
        return [0]

    def update(self, seen, flow, pkt, direction):
        data = pkt.payload
        if not data:
            return None
        m = SSH_BANNER.match(data)
        if m and (b"\n" in data or getattr(pkt, "full", True) or len(data) >= SSH_MAX_BANNER):
            return Detection("ssh", "banner", 1.0, {"banner": m.group(0).decode("ascii")})
        if b"SSH-".startswith(data[:4]) and b"\n" not in data and len(data) < SSH_MAX_BANNER \
                and not getattr(pkt, "full", True):
            return None                       # a banner may still be coming in this direction
        seen[0] += 1
        return DONE if seen[0] >= 2 else None


HTTP_REQUEST = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH) \S+ HTTP/1\.[01]\r\n")
HTTP_START = re.compile(rb"^[A-Z]{1,7}( [^\r\n]*)?$")      # what may still grow into a request line
HOST_HEADER = re.compile(rb"\r\nhost:[ \t]*([^\r\n:]+)(?=[\r:])", re.I)
HTTP_MAX_HEAD = 8192


class HTTP(Classifier):
    """Reads the reassembled request: a request line split from its Host
    header, or a Host header split over segments, is still read whole."""

    name = "http"
    transports = frozenset({TCP})
    reads_stream = True

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        data = pkt.payload[:HTTP_MAX_HEAD]
        final = getattr(pkt, "full", True) or len(data) >= HTTP_MAX_HEAD
        m = HTTP_REQUEST.match(data)
        if not m:
            return None if not final and HTTP_START.match(data) else DONE
        host = HOST_HEADER.search(data)
        if host is None and b"\r\n\r\n" not in data and not final:
            return None                       # the headers go on in a later segment
        return Detection("http", "request", 1.0,
                         {"method": m.group(1).decode(), "host": host.group(1).decode("ascii", "replace").lower() if host else None})
