"""WireGuard, by its fixed message layout.

Sources: the WireGuard protocol (Donenfeld, NDSS 2017, section 5.4) and the
digest of Russia's TSPU behaviour (broad WireGuard blocking since 2023-08):
byte 0 is the message type and bytes 1-3 are zero; handshake initiation is
exactly 148 bytes (type 1), response 92 (type 2, whose receiver index equals
the initiator's sender index), cookie reply 64 (type 3); transport data
(type 4) is a 16-byte header plus a ciphertext padded to 16 bytes, so at
least 32 bytes and a multiple of 16.

Signals: ``handshake-initiation`` on the client's first packet (the TSPU
needs no more); with ``require_response: true``, ``handshake`` only once
the response's receiver index matches; ``transport`` for a flow seen only
mid-session (several type-4 packets with increasing counters).
"""

from __future__ import annotations

import struct

from ..packet import UDP
from .base import C2S, DONE, Classifier, Detection

SIZES = {1: 148, 2: 92, 3: 64}


def message_type(payload: bytes) -> int | None:
    """WireGuard message type if *payload* has the exact layout, else None."""
    if len(payload) < 32 or payload[1:4] != b"\x00\x00\x00":
        return None
    kind = payload[0]
    if kind in SIZES:
        return kind if len(payload) == SIZES[kind] else None
    if kind == 4 and len(payload) % 16 == 0:
        return 4
    return None


class _State:
    __slots__ = ("sender", "counters")

    def __init__(self):
        self.sender = None
        self.counters: list[int] = []


class WireGuard(Classifier):
    name = "wireguard"
    transports = frozenset({UDP})
    DEFAULTS = {"require_response": False, "transport_packets": 4}

    def start(self, flow):
        return _State()

    def update(self, st: _State, flow, pkt, direction):
        kind = message_type(pkt.payload)
        if kind is None:
            return DONE
        if kind == 1 and direction == C2S and st.sender is None and not st.counters:
            st.sender = pkt.payload[4:8]
            if not self.params["require_response"]:
                return Detection("wireguard", "handshake-initiation", 0.9, {"length": 148})
            return None
        if kind == 2 and st.sender is not None:
            if pkt.payload[8:12] == st.sender:
                return Detection("wireguard", "handshake", 1.0, {})
            return DONE
        if kind == 4:
            counter = struct.unpack_from("<Q", pkt.payload, 8)[0]
            if st.counters and direction == C2S and counter <= st.counters[-1]:
                return DONE
            if direction == C2S:
                st.counters.append(counter)
            if len(st.counters) >= self.params["transport_packets"]:
                return Detection("wireguard", "transport", 0.8, {"packets": len(st.counters)})
            return None
        return None if kind == 3 else DONE
