"""Byte builders for unit tests: packets, flows and real TLS ClientHellos."""

from __future__ import annotations

import struct

from tunnelwall.base.tlshello import client_hello
from tunnelwall.middlebox.classifiers.base import C2S, DONE
from tunnelwall.middlebox.flow import Flow
from tunnelwall.middlebox.packet import TCP, UDP, Packet, ip_bytes

CLIENT, SERVER = ip_bytes("10.0.0.11"), ip_bytes("198.18.0.20")


def pkt(payload: bytes, direction: int = C2S, proto: int = UDP, cport: int = 40000, sport: int = 443,
        flags: int = 0x18) -> Packet:
    if direction == C2S:
        return Packet(CLIENT, SERVER, proto, cport, sport, payload, flags=flags if proto == TCP else 0)
    return Packet(SERVER, CLIENT, proto, sport, cport, payload, flags=flags if proto == TCP else 0)


def flow(proto: int = UDP, cport: int = 40000, sport: int = 443) -> Flow:
    key = bytes((proto,)) + CLIENT + SERVER + struct.pack(">HH", cport, sport)
    return Flow(key, proto, CLIENT, cport, SERVER, sport, 0.0)


def run(classifier, packets: list[tuple[int, bytes]], proto: int = UDP, cport: int = 40000, sport: int = 443):
    """Feed (direction, payload) pairs to one classifier; return its first
    non-None result and the 1-based index of the packet that produced it."""
    f = flow(proto, cport, sport)
    state = classifier.start(f)
    if state is None:
        return None, 0
    for i, (direction, payload) in enumerate(packets, start=1):
        result = classifier.update(state, f, pkt(payload, direction, proto, cport, sport), direction)
        if result is not None:
            return result, i
    return None, len(packets)


def handmade_client_hello(extensions: list[tuple[int, bytes]]) -> bytes:
    """A minimal ClientHello record with exactly the given extensions."""
    exts = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in extensions)
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def sni_extension(name: str) -> tuple[int, bytes]:
    raw = name.encode()
    entry = b"\x00" + struct.pack(">H", len(raw)) + raw
    return 0, struct.pack(">H", len(entry)) + entry


__all__ = ["C2S", "DONE", "TCP", "UDP", "pkt", "flow", "run", "client_hello", "handmade_client_hello",
           "sni_extension"]
