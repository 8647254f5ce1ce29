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
  distance; below ``threshold`` for any model, the flow carries TLS.

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

CCS, APPDATA = 0x14, 0x17
MODELS_FILE = Path(__file__).with_name("tlsintls-models.json")


def _default_models() -> list[dict]:
    return json.loads(MODELS_FILE.read_text())["models"]


class _State:
    __slots__ = ("pos", "records", "ccs", "start", "seen", "bursts", "packets", "dirs")

    def __init__(self):
        self.pos = [0, 0]             # bytes of each direction's stream parsed as records (outer handshake)
        self.records = [0, 0]         # ... and the records in them
        self.ccs = [False, False]     # that direction's ChangeCipherSpec seen
        self.start = [-1, -1]         # stream offset where counting starts (after its Finished); -1: not yet
        self.seen = [0, 0]            # bytes of each direction's stream already counted as packets
        self.bursts: list[int] = []   # totals of the bursts since the client's Finished
        self.packets: list[int] = []  # ... their packets
        self.dirs: list[int] = []     # ... and their directions


FEATURES = 6


def window_features(window: list[int], packets: list[int], caps: list[int]) -> list[float]:
    """The log of each burst's total, capped (a download must not make the
    server's bursts grow without end), then the packets of the first two
    bursts (an inner ClientHello and the server's flight arrive as blocks
    of full segments; a web page's first requests and answers, as several
    small records)."""
    return [math.log(min(max(x, 1), cap)) for x, cap in zip(window, caps)] + [float(packets[0]), float(packets[1])]


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
    DEFAULTS = {"models": None, "threshold": 3.0, "caps": [4000, 6000, 1500, 200], "max_starts": 6, "min_sd": 0.1,
                "min_sd_packets": 0.5,
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
        # Each pass consumes one whole record (5-byte header and body) or leaves.
        while pos + 5 <= len(data):
            spend(1, "tls-in-tls records")
            rtype, length = data[pos], struct.unpack_from(">H", data, pos + 3)[0]
            if rtype not in (0x14, 0x15, 0x16, 0x17) or data[pos + 1] != 0x03:
                return False
            if rtype == APPDATA and not st.ccs[direction]:
                st.start[direction] = pos          # application data with no ChangeCipherSpec before it
                break                              # (TLS 1.3 without the compatibility CCS, simple-obfs)
            if pos + 5 + length > len(data):
                break
            pos += 5 + length
            st.records[direction] += 1
            if st.ccs[direction]:
                st.start[direction] = pos          # after the Finished, the record after the CCS
                break
            if rtype == CCS:
                st.ccs[direction] = True
        st.pos[direction] = pos
        return st.records[direction] <= self.params["max_handshake_records"]

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
        k = len(st.bursts) - 1
        if direction == C2S:
            # the last window's fourth burst ended: nothing more to judge
            return DONE if k >= 2 * self.params["max_starts"] + 2 else None
        return self._judge_growing(st, 0)

    def _judge_growing(self, st: _State, before: int):
        k = len(st.bursts) - 1
        if st.dirs[k] != S2C or k < 3 or (k - 3) // 2 >= self.params["max_starts"] \
                or before >= self.params["caps"][3]:
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
