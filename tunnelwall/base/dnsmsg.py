"""DNS messages on the wire (RFC 1035 section 4.1): parse a query, build an answer.

Shared by the censor (reading query names, forging answers) and the
outside world's DNS server (answering), which must agree byte for byte on
what a query is. Hand-written rather than dnspython: the censor parses
every UDP datagram of a new flow, and this needs one pass and no objects.
"""

from __future__ import annotations

import re
import socket
import struct

LABEL = re.compile(rb"^[A-Za-z0-9_*-]{1,63}$")


def parse_dns_query(payload: bytes) -> dict | None:
    """Query name and type of a DNS query message, or None."""
    if len(payload) < 17:
        return None
    ident, flags, qd, an, ns, ar = struct.unpack_from(">6H", payload, 0)
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1 or an or ns or ar > 1:
        return None
    pos, labels = 12, []
    # Each label moves pos on by 1 + its length; the end of the payload stops it.
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


def build_answer(query: bytes, address: str | None, ttl: int = 300) -> bytes | None:
    """The answer to *query*: one A record for *address*, or NXDOMAIN when
    *address* is None. Copies the query's id, question and RD bit; sets QR
    and RA. None if *query* is not a query."""
    parsed = parse_dns_query(query)
    if parsed is None:
        return None
    question = query[12:parsed["question_end"]]
    rd = struct.unpack_from("!H", query, 2)[0] & 0x0100
    flags = (0x8180 if address else 0x8183) | rd
    body = struct.pack("!6H", parsed["id"], flags, 1, 1 if address else 0, 0, 0) + question
    if address:
        body += struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + socket.inet_aton(address)
    return body
