"""What reaches the censor's matcher: TCP reassembly, TLS records.

GFWeb (Hoang et al., USENIX Security 2024) found the GFW reassembling TCP
segments before matching names, while a ClientHello spread over several TLS
records still got through.
"""

from __future__ import annotations

import struct

from tunnelwall.base.tlshello import client_hello

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import Tcp

SOURCE = "Hoang et al. (GFWeb), USENIX Security 2024"
NAME = "www.twitter.com"


def _split_segments():
    hello = client_hello(NAME)
    cut = hello.index(NAME.encode()) + 5                # inside the name
    return Tcp().handshake().data(hello[:cut]).data(hello[cut:]).frames


def _split_records():
    hello = client_hello(NAME)
    message = hello[5:]
    cut = message.index(NAME.encode()) + 5
    records = b"".join(b"\x16\x03\x01" + struct.pack(">H", len(part)) + part for part in (message[:cut], message[cut:]))
    return Tcp().handshake().data(records).frames


VECTORS = [
    Vector("tcp-model", f"ClientHello naming {NAME} over two TCP segments", _split_segments, BLOCKED, SOURCE,
           ("gfw-2025",)),
    Vector("tcp-model", f"ClientHello naming {NAME} over two TLS records", _split_records, NOT_BLOCKED, SOURCE,
           ("gfw-2025",)),
]
