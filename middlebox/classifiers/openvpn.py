"""OpenVPN over UDP and TCP, by its opcodes and ACK pattern.

Source: Xue, Kallitsis, Houmansadr, Ensafi, "Fingerprinting Obfuscated Proxy
Traffic with Encapsulated TLS Handshakes" / "OpenVPN is Open to VPN
Fingerprinting", USENIX Security 2022, sections 6-7.

Wire format: every OpenVPN packet starts with a header byte
``opcode << 3 | key_id``: byte 0 on UDP, byte 2 on TCP (after a 2-byte
record length). Client hard-reset opcodes are 1, 7, 10 (V1, V2, V3); server
hard-reset opcodes 2, 8. tls-auth and tls-crypt protect the rest of the
packet but leave this byte in clear, so all three modes share it.

Three tests, as in the paper:

* ``hard-reset-handshake`` (fast; decides on the 2nd packet): the client's
  first packet carries a client-reset opcode with key id 0 and the server's
  first packet a server-reset opcode with key id 0.
* ``opcode-sequence`` (the paper's opcode filter; also catches XOR-patched
  OpenVPN, whose scrambling maps opcodes one-to-one): within the first
  ``window`` packets, the number of distinct header values is 4..10 and the
  two reset values of the first client and server packets never recur after
  the handshake.
* ``ack-pattern`` (for OpenVPN inside other tunnels; optional): the size of
  the 3rd client packet is taken as the ACK size; per 10-packet bin of client
  packets, ACK-sized packets number bin1 in [1,3], bin2 in [2,5], bins 3-5
  <= 5, later bins <= 1 (paper, section 7).

Reported by the paper: 85.9% of plain flows flagged, FPR <= 0.0039%.
"""

from __future__ import annotations

import struct

from ..budget import spend
from ..packet import TCP, UDP
from .base import C2S, DONE, Classifier, Detection

CLIENT_RESET = frozenset({1, 7, 10})
SERVER_RESET = frozenset({2, 8})
MIN_PACKET = 14   # opcode + 8-byte session id + ack array length + packet id


def header_bytes(payload: bytes, tcp: bool) -> list[int]:
    """The header byte of each OpenVPN record in a packet (TCP segments may
    carry several length-prefixed records). Empty if the framing is wrong."""
    if not tcp:
        return [payload[0]] if payload else []
    out, pos = [], 0
    # Each record moves pos on by 2 + its length, which is at least 1 here.
    while pos + 3 <= len(payload):
        spend(1, "openvpn records")
        length = struct.unpack_from(">H", payload, pos)[0]
        if length < 1 or pos + 2 + length > len(payload):
            # A record continuing in the next segment: count it, stop here.
            if length >= 1 and not out:
                out.append(payload[pos + 2])
            break
        out.append(payload[pos + 2])
        pos += 2 + length
    return out


class _State:
    __slots__ = ("first_c2s", "first_s2c", "values", "records", "reset_recurred", "c2s_sizes", "opcodes_alive")

    def __init__(self):
        self.first_c2s = self.first_s2c = None
        self.values: set[int] = set()
        self.records = 0
        self.reset_recurred = False
        self.c2s_sizes: list[int] = []
        self.opcodes_alive = True      # the opcode tests can still match


class OpenVPN(Classifier):
    name = "openvpn"
    transports = frozenset({TCP, UDP})
    DEFAULTS = {"handshake": True, "opcode_sequence": True, "window": 100, "sequence_min_packets": 20,
                "min_distinct": 4, "max_distinct": 10, "ack_filter": False}

    def configure(self):
        # The ACK filter finds OpenVPN inside other tunnels (e.g. TLS), so it
        # must outlive another classifier's identification of the flow, and
        # it needs 100 client data packets (the paper: flows of >= 150
        # packets), more than a profile's usual inspection budget.
        self.sees_inside_tunnels = bool(self.params["ack_filter"])
        self.budget = 300 if self.params["ack_filter"] else 0

    def start(self, flow):
        return _State()

    def walk_constants(self) -> tuple[int, int, int, int] | tuple[()]:
        """What the C walk (middlebox/_fastpath.c, take_ovpn) needs to run
        the opcode test as :meth:`update` does on a TCP segment; empty when
        it cannot (the ACK filter, or the handshake test alone)."""
        p = self.params
        if p["ack_filter"] or not p["opcode_sequence"]:
            return ()
        return p["window"], p["sequence_min_packets"], p["min_distinct"], p["max_distinct"]

    def update(self, st: _State, flow, pkt, direction):
        if direction == C2S and pkt.payload:
            st.c2s_sizes.append(len(pkt.payload))
        if st.opcodes_alive and pkt.payload:
            result = self._opcodes(st, pkt, direction)
            if result is not None:
                if result is not DONE:
                    return result
                st.opcodes_alive = False
        if not self.params["ack_filter"]:
            return None if st.opcodes_alive else DONE
        return self._ack_filter(st) if direction == C2S else None

    def _opcodes(self, st: _State, pkt, direction):
        """The handshake and opcode-sequence tests; DONE once neither can match."""
        payload, tcp = pkt.payload, pkt.proto == TCP
        values = header_bytes(payload, tcp)
        if not values or (st.records == 0 and not tcp and len(payload) < MIN_PACKET):
            return DONE
        sequence = self.params["opcode_sequence"]
        opcode, key_id = values[0] >> 3, values[0] & 7
        if direction == C2S and st.first_c2s is None:
            st.first_c2s = values[0]
            if not sequence and not (opcode in CLIENT_RESET and key_id == 0):
                return DONE
        elif direction != C2S and st.first_s2c is None:
            st.first_s2c = values[0]
            if (self.params["handshake"] and st.first_c2s is not None and key_id == 0 and opcode in SERVER_RESET
                    and st.first_c2s >> 3 in CLIENT_RESET and st.first_c2s & 7 == 0):
                return Detection("openvpn", "hard-reset-handshake", 0.95,
                                 {"client_opcode": st.first_c2s >> 3, "server_opcode": opcode})
            if not sequence:
                return DONE
        elif st.first_c2s in values or st.first_s2c in values:
            st.reset_recurred = True
        st.records += len(values)
        st.values.update(values)
        if not sequence:
            return None
        if st.reset_recurred or len(st.values) > self.params["max_distinct"]:
            return DONE
        if (st.records >= self.params["sequence_min_packets"] and st.first_s2c is not None
                and self.params["min_distinct"] <= len(st.values)):
            return Detection("openvpn", "opcode-sequence", 0.85,
                             {"distinct_opcodes": len(st.values), "records": st.records})
        return DONE if st.records >= self.params["window"] else None

    def _ack_filter(self, st: _State):
        sizes = st.c2s_sizes
        if len(sizes) < 100:
            return None
        ack = sizes[2]
        bins = [sum(1 for s in sizes[i:i + 10] if s == ack) for i in range(0, 100, 10)]
        ok = (1 <= bins[0] <= 3 and 2 <= bins[1] <= 5 and all(b <= 5 for b in bins[2:5])
              and all(b <= 1 for b in bins[5:]))
        if ok:
            return Detection("openvpn", "ack-pattern", 0.7, {"ack_size": ack, "bins": bins})
        return DONE
