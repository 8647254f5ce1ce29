"""TLS inside TLS: an inner handshake seen through the outer one's packets.

Source: Xue, Kallitsis, Houmansadr, Ensafi, "Fingerprinting Obfuscated Proxy
Traffic with Encapsulated TLS Handshakes", USENIX Security 2024: when a
proxy (Trojan, V2Ray VMess/VLESS over TLS, stunnel, HTTPS proxies,
Shadowsocks with a TLS plugin) carries a client's HTTPS, the sizes and
directions of the packets after the outer handshake show the inner
handshake. They detected every one of 23 proxy configurations with a
true-positive rate above 70 % at a false-positive rate of at most
0.0544 % on ISP traffic; multiplexing cut detection sharply.

The detector here (docs/tls-in-tls.md) follows the shape of nDPI's public
heuristic (pull request 2553, ``src/lib/protocols/tls.c``), re-implemented
from its description, with models measured on this testbed:

* the outer handshake is read from the TLS records; what is judged starts
  after the client's Finished (the record after its ChangeCipherSpec,
  which is not counted) and, from the server, after its own Finished;
* from there on it counts **packets** (the bytes each in-order segment
  adds), not records, in bursts: a burst is the packets one side sends
  before the other side sends;
* **every** client->server burst among the first ``max_starts`` opens a
  window of four bursts (client, server, client, server), so a preamble
  round trip (HTTP CONNECT, a WebSocket upgrade, a SOCKS, Trojan or VLESS
  header answered by the server, the server's NewSessionTicket) only moves
  the inner handshake to a later window, and with multiplexing every inner
  handshake among them is judged;
* a window's four totals (each capped, ``caps``) are compared, in
  logarithms, with a model per inner client stack by a diagonal Mahalanobis
  distance; below ``threshold`` for any model, the flow carries TLS;
* a window whose third burst (the client's answer to the server's burst)
  starts with a packet smaller than ``min_answer`` is not judged: an inner
  client answers an inner server flight with at least its Finished, in a
  record, inside an outer record (issue 27: Chromium's h2 page loads answer
  the page with a 31-byte HTTP/2 control frame first);
* data carried in the outer handshake itself (simple-obfs: the client's
  first data in its ClientHello's session ticket, the server's in a
  "Finished" far larger than a Finished can be) is counted as the first
  client and server bursts.

The models (means and spreads of the four log-totals) are fitted on the
tune half of the corpus this project records (benchmarks/record_tlsintls.py,
benchmarks/data/tlsintls-flows.jsonl.gz) by ``benchmarks/tlsintls.py --fit``,
and kept in ``tlsintls-models.json`` beside this file. One threshold for
all; no per-tunnel tuning.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from ..budget import spend
from ..packet import TCP
from .base import C2S, DONE, S2C, Classifier, Detection, ParamError

CCS, HANDSHAKE, APPDATA = 0x14, 0x16, 0x17
EXT_SESSION_TICKET = 35
# The largest record a TLS 1.2 Finished can take after the ChangeCipherSpec:
# 4-byte header and 12 bytes of verify_data, then a CBC cipher's worst case
# (explicit IV 16, HMAC-SHA384 48, padding up to 256) = 336 bytes; AEAD
# suites need 40. (TLS 1.3 sends application-data records after its CCS.)
# A handshake record there that is larger carries something else: data.
FINISHED_MAX = 336
MODELS_FILE = Path(__file__).with_name("tlsintls-models.json")


def _default_models() -> list[dict]:
    return json.loads(MODELS_FILE.read_text())["models"]


class _State:
    __slots__ = ("pos", "records", "ccs", "start", "seen", "bursts", "packets", "dirs", "firsts", "ticket",
                 "hello_packets")

    def __init__(self):
        self.pos = [0, 0]             # bytes of each direction's stream parsed as records (outer handshake)
        self.records = [0, 0]         # ... and the records in them
        self.ccs = [False, False]     # that direction's ChangeCipherSpec seen
        self.start = [-1, -1]         # stream offset where counting starts (after its Finished); -1: not yet
        self.seen = [0, 0]            # bytes of each direction's stream already counted as packets
        self.bursts: list[int] = []   # totals of the bursts since the client's Finished
        self.packets: list[int] = []  # ... their packets
        self.dirs: list[int] = []     # ... and their directions
        self.firsts: list[int] = []   # ... and the size of each one's first packet
        self.ticket = 0               # bytes of the client's ClientHello's session_ticket extension
        self.hello_packets = 0        # the client's packets until its first record was whole


FEATURES = 6


def window_features(window: list[int], packets: list[int], caps: list[int]) -> list[float]:
    """The log of each burst's total, capped (a download must not make the
    server's bursts grow without end), then the packets of the first two
    bursts (an inner ClientHello and the server's flight arrive as blocks
    of full segments; a web page's first requests and answers, as several
    small records)."""
    return [math.log(min(max(x, 1), cap)) for x, cap in zip(window, caps)] + [float(packets[0]), float(packets[1])]


def session_ticket_length(msg: bytes) -> int:
    """Bytes in the session_ticket extension of a ClientHello handshake
    message (4-byte header and body); 0 when it has none or does not parse.
    A TLS 1.2 resumption carries a ticket the server made (typically
    100-250 bytes); TLS 1.3 resumes with pre_shared_key, not this."""
    try:
        pos = 4 + 2 + 32                              # header, legacy_version, random
        pos += 1 + msg[pos]                           # session id
        pos += 2 + struct.unpack_from(">H", msg, pos)[0]   # cipher suites
        pos += 1 + msg[pos]                           # compression methods
        end = min(len(msg), pos + 2 + struct.unpack_from(">H", msg, pos)[0])
        pos += 2
        # Each pass moves pos on by an extension's 4-byte header and its body.
        while pos + 4 <= end:
            spend(1, "tls-in-tls extensions")
            etype, elen = struct.unpack_from(">HH", msg, pos)
            if etype == EXT_SESSION_TICKET:
                return elen
            pos += 4 + elen
    except (IndexError, struct.error):
        pass
    return 0


def window_distance(features: list[float], model: dict) -> float:
    """Diagonal Mahalanobis distance of a window's features from a model."""
    total = 0.0
    for f, mean, sd in zip(features, model["means"], model["sds"]):
        total += ((f - mean) / sd) ** 2
    return math.sqrt(total)


class TLSinTLS(Classifier):
    name = "tls-in-tls"
    transports = frozenset({TCP})
    reads_stream = True
    sees_inside_tunnels = True            # runs on after the outer TLS is identified
    policy = True                         # only where a profile has a rule for it
    reports = frozenset({"tls-in-tls"})
    # caps: the fourth burst counts only its start (the server's answer to
    # the client's Finished: NewSessionTickets in TLS 1.3, or the response),
    # so a download behind it looks like any other.
    # min_answer: the smallest first packet of a window's third burst, an
    # inner client's answer to an inner server flight: its Finished (TLS
    # 1.3: a 58-byte record with SHA-256; TLS 1.2 resumed: CCS and Finished,
    # 51) inside an outer record (at least 21 bytes more): 64 leaves room.
    # HTTP/2 control frames (SETTINGS ack 9 bytes, WINDOW_UPDATE 13, PING
    # 17) in a TLS 1.3 record are 31-39 bytes.
    DEFAULTS = {"models": None, "threshold": 3.0, "caps": [4000, 6000, 1500, 200], "max_starts": 6, "min_sd": 0.1,
                "min_sd_packets": 0.5, "min_answer": 64,
                "max_handshake_records": 40}
    budget = 60                           # data packets it may need: the outer handshake and some windows

    def configure(self):
        if self.params["models"] is None:
            self.params["models"] = _default_models()
        models = self.params["models"]
        if not isinstance(models, list) or not all(
                isinstance(m, dict) and isinstance(m.get("means"), list) and len(m["means"]) == FEATURES
                and isinstance(m.get("sds"), list) and len(m["sds"]) == FEATURES for m in models):
            raise ParamError("tls-in-tls.models: a list of {name, means: [6 features], sds: [6]} "
                             "(log-sizes of four bursts, packets of the first two)")
        caps = self.params["caps"]
        if not isinstance(caps, list) or len(caps) != 4 or not all(isinstance(c, int) and c > 0 for c in caps):
            raise ParamError("tls-in-tls.caps: four positive whole numbers (bytes)")
        # floors: a log-size's spread of at least min_sd (10 %), a packet
        # count's of half a packet (a count seen constant in the fit may
        # still differ by one)
        floors = [self.params["min_sd"]] * 4 + [self.params["min_sd_packets"]] * 2
        self._models = [{"name": m.get("name", "?"), "means": m["means"],
                         "sds": [max(float(s), floor) for s, floor in zip(m["sds"], floors)]} for m in models]

    def start(self, flow):
        return _State()

    def walk_constants(self) -> tuple[int, int, int, int]:
        """What the C walk (middlebox/_fastpath.c, take_tls) needs to count
        as :meth:`update` does a segment that only grows the current burst:
        the windows judged and the fourth burst's cap (two unused)."""
        return self.params["max_starts"], self.params["caps"][3], 0, 0

    def update(self, st: _State, flow, view, direction):
        data = view.payload
        if st.start[direction] < 0 and not self._handshake(st, data, direction):
            return DONE
        if st.start[C2S] < 0 or st.start[direction] < 0:
            st.seen[direction] = len(data)
            return self._out_of_data(st, view)
        begin = max(st.seen[direction], st.start[direction])
        size = len(data) - begin
        st.seen[direction] = len(data)
        if size > 0:
            result = self._packet(st, direction, size)
            if result is not None:
                return result
        return self._out_of_data(st, view)

    def _handshake(self, st: _State, data: bytes, direction: int) -> bool:
        """Parse the outer handshake's records; False: this is not TLS."""
        pos = st.pos[direction]
        if direction == C2S and st.records[C2S] == 0:
            st.hello_packets += 1
        # Each pass consumes one whole record (5-byte header and body) or leaves.
        while pos + 5 <= len(data):
            spend(1, "tls-in-tls records")
            rtype, length = data[pos], struct.unpack_from(">H", data, pos + 3)[0]
            if rtype not in (0x14, 0x15, 0x16, 0x17) or data[pos + 1] != 0x03:
                return False
            if rtype == APPDATA and not st.ccs[direction]:
                st.start[direction] = pos          # application data with no ChangeCipherSpec before it
                break                              # (TLS 1.3 without the compatibility CCS, simple-obfs)
            if st.ccs[direction] and direction == S2C and rtype == HANDSHAKE and length > FINISHED_MAX:
                # No Finished is this large: the server carries data in its
                # handshake flight. Its body is the server's first burst.
                self._carried(st, pos + 5)
                break
            if pos + 5 + length > len(data):
                break
            pos += 5 + length
            st.records[direction] += 1
            if direction == C2S and st.records[C2S] == 1 and rtype == HANDSHAKE:
                st.ticket = session_ticket_length(data[5:pos])
            if st.ccs[direction]:
                st.start[direction] = pos          # after the Finished, the record after the CCS
                break
            if rtype == CCS:
                st.ccs[direction] = True
        st.pos[direction] = pos
        return st.records[direction] <= self.params["max_handshake_records"]

    def _carried(self, st: _State, server_start: int):
        """Data carried in the outer handshake (simple-obfs's fake one):
        the client's first burst is its ClientHello's session ticket, with
        whatever application data it sent before the server answered; the
        server's, the records from the oversized Finished's body on. The
        client's later data counts from the end of its ClientHello."""
        st.start[S2C] = server_start
        if st.start[C2S] < 0:
            st.start[C2S] = st.pos[C2S]
        if st.bursts:                               # application data sent before the server answered
            st.bursts[0] += st.ticket
            st.packets[0] += st.hello_packets
        elif st.ticket:
            st.bursts.append(st.ticket)
            st.packets.append(st.hello_packets)
            st.dirs.append(C2S)
            st.firsts.append(st.ticket)

    def _packet(self, st: _State, direction: int, size: int):
        """Add one packet of *size* bytes; judge the window it completes or grows.

        Bursts alternate, the first from the client, so the windows start at
        the even bursts and window j ends with burst 2j + 3 (the server's).
        That fourth burst is judged at each of its packets until it reaches
        its cap: the flow may end, or the client stay silent, right after it."""
        if not st.bursts:
            if direction != C2S:
                return None                        # the sequence starts with the client
        elif st.dirs[-1] == direction:
            before = st.bursts[-1]
            st.bursts[-1] += size
            st.packets[-1] += 1
            return self._judge_growing(st, before)
        st.bursts.append(size)
        st.packets.append(1)
        st.dirs.append(direction)
        st.firsts.append(size)
        k = len(st.bursts) - 1
        if direction == C2S:
            # the last window's fourth burst ended: nothing more to judge
            return DONE if k >= 2 * self.params["max_starts"] + 2 else None
        return self._judge_growing(st, 0)

    def _judge_growing(self, st: _State, before: int):
        k = len(st.bursts) - 1
        if st.dirs[k] != S2C or k < 3 or (k - 3) // 2 >= self.params["max_starts"] \
                or before >= self.params["caps"][3] or st.firsts[k - 1] < self.params["min_answer"]:
            return None
        return self._match(st.bursts[k - 3:k + 1], st.packets[k - 3:k + 1])

    def _out_of_data(self, st: _State, view):
        # The reassembly limit of a direction was reached: nothing more will come.
        return DONE if getattr(view, "full", False) else None

    def _match(self, window: list[int], packets: list[int]):
        features, best = window_features(window, packets, self.params["caps"]), None
        for model in self._models:
            d = window_distance(features, model)
            if d < self.params["threshold"] and (best is None or d < best[0]):
                best = (d, model["name"])
        if best is None:
            return None
        return Detection("tls-in-tls", "burst-model", 0.8,
                         {"model": best[1], "distance": round(best[0], 2), "bursts": list(window),
                          "packets": list(packets[:2])})
