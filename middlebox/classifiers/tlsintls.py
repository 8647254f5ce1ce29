"""TLS inside TLS: an inner handshake seen through the outer one's records.

Source: Xue, Ramesh, ValdikSS, Evdokimov, Viktorov, Jain, Wustrow, Basso,
Ensafi, "Bypassing Tor Exit Blocking ..." / "Fingerprinting Obfuscated Proxy
Traffic with Encapsulated TLS Handshakes", USENIX Security 2024: when a proxy
(Trojan, V2Ray/VMess over TLS, stunnel, HTTPS proxies) carries a browser's
HTTPS, the sizes and directions of the first records after the outer
handshake reveal the inner handshake. Reported true-positive rate 0.859
(0.687 for vmess-ws-tls with random padding); multiplexing defeats most
padding. Censors act on it with a probability: the rule's ``probability``.

The model is the burst model of nDPI's TLS dissector (pull request 2553,
``src/lib/protocols/tls.c``), re-implemented from its description:

* in each direction, counting starts after that direction's
  ChangeCipherSpec; only application-data records count;
* the counted records form four bursts, client->server, server->client,
  client->server, server->client (a burst ends when the other side sends);
  the first burst is at most 3 packets. We count records, not packets, so
  every burst is capped at 3 records and at 3 full packets' worth of bytes
  (4,344), and the fourth is judged once it has 3 records or ends: a
  download inside the tunnel would otherwise grow it without end;
* each record counts its length minus 24 bytes (the 5-byte header, the
  16-byte AEAD tag, the inner content type and a little padding);
* the four totals are compared with models of inner handshakes by a
  Mahalanobis distance; below a model's threshold, the flow carries TLS.

nDPI's models (means of the four bursts, threshold) are Firefox TLS 1.2
(213, 4515, 108, 308; 3.5), Firefox TLS 1.3 (641, 4649, 448, 1094; 3.0,
first burst at least 517) and Chrome (1850, 4903, 785, 1051; 3.0). Their
covariances are not published with them, so the distance here uses a
diagonal covariance whose standard deviation is ``spread`` times each mean
(an assumption, stated as one). The testbed's own inner client is curl with
OpenSSL 3 against a server with a one-certificate chain, whose inner
handshake is far smaller than a browser's against a real site; the
``openssl-curl`` model has the means measured on this testbed (README,
"TLS-in-TLS"), and the false-positive rate on plain HTTPS fetches of
varied sizes is measured beside it.
"""

from __future__ import annotations

import math
import struct

from ..budget import spend
from ..packet import TCP
from .base import C2S, DONE, Classifier, Detection

RECORD_OVERHEAD = 24
BURST_RECORDS = 3
BURST_BYTES = 3 * 1448            # three full-size TCP segments
CCS, APPDATA = 0x14, 0x17

DEFAULT_MODELS = [
    {"name": "firefox-tls12", "means": [213, 4515, 108, 308], "threshold": 3.5, "min_first": 0},
    {"name": "firefox-tls13", "means": [641, 4649, 448, 1094], "threshold": 3.0, "min_first": 517},
    {"name": "chrome", "means": [1850, 4903, 785, 1051], "threshold": 3.0, "min_first": 0},
    # Measured on this testbed (stunnel carrying curl's HTTPS, OpenSSL 3): bursts
    # [565, 1044-1309, 186-188, 1706-4344] over seven connections of 5 kB-300 kB.
    {"name": "openssl-curl", "means": [565, 1180, 186, 3000], "threshold": 3.0, "min_first": 0},
]


class _State:
    __slots__ = ("pos", "counting", "bursts", "burst_dir", "burst_records", "records_seen")

    def __init__(self):
        self.pos = [0, 0]                 # bytes of each direction's stream already parsed
        self.counting = [False, False]    # after that direction's ChangeCipherSpec
        self.bursts: list[int] = []
        self.burst_dir: int | None = None
        self.burst_records = 0            # records in the current burst
        self.records_seen = 0


def burst_distance(bursts: list[int], model: dict, spread: float) -> float:
    """Mahalanobis distance with a diagonal covariance (sd = spread * mean)."""
    total = 0.0
    for x, mean in zip(bursts, model["means"]):
        sd = max(spread * mean, 16.0)
        total += ((x - mean) / sd) ** 2
    return math.sqrt(total)


class TLSinTLS(Classifier):
    name = "tls-in-tls"
    transports = frozenset({TCP})
    reads_stream = True
    sees_inside_tunnels = True            # runs on after the outer TLS is identified
    policy = True                         # only where a profile has a rule for it
    reports = frozenset({"tls-in-tls"})
    DEFAULTS = {"spread": 0.25, "models": DEFAULT_MODELS, "max_records": 40}
    budget = 60                           # data packets it may need: the outer handshake and four bursts

    def configure(self):
        models = self.params["models"]
        if not isinstance(models, list) or not all(
                isinstance(m, dict) and isinstance(m.get("means"), list) and len(m["means"]) == 4
                and isinstance(m.get("threshold"), (int, float)) for m in models):
            from .base import ParamError
            raise ParamError("tls-in-tls.models: a list of {name, means: [4 numbers], threshold, min_first}")

    def start(self, flow):
        return _State()

    def walk_constants(self) -> tuple[int, int, int, int]:
        """What the C walk (middlebox/_fastpath.c, take_tls) needs to count
        records as :meth:`update` does: the record budget, the burst caps
        and the per-record overhead."""
        return self.params["max_records"], BURST_RECORDS, BURST_BYTES, RECORD_OVERHEAD

    def update(self, st: _State, flow, view, direction):
        data = view.payload
        pos = st.pos[direction]
        # Each pass consumes one whole record (5-byte header and body) or leaves.
        while pos + 5 <= len(data):
            spend(1, "tls-in-tls records")
            rtype, length = data[pos], struct.unpack_from(">H", data, pos + 3)[0]
            if rtype not in (0x14, 0x15, 0x16, 0x17) or data[pos + 1] != 0x03:
                return DONE                                  # not TLS records (any more)
            if pos + 5 + length > len(data):
                break                                        # the rest of this record comes later
            pos += 5 + length
            st.records_seen += 1
            if rtype == CCS:
                st.counting[direction] = True
            elif rtype == APPDATA and st.counting[direction]:
                result = self._count(st, direction, max(0, length + 5 - RECORD_OVERHEAD))
                if result is not None:
                    st.pos[direction] = pos
                    return result
        st.pos[direction] = pos
        if st.records_seen > self.params["max_records"] or getattr(view, "full", False):
            # Out of budget: judge what there is if all four bursts began.
            return self._judge(st.bursts) if len(st.bursts) == 4 else DONE
        return None

    def _count(self, st: _State, direction: int, size: int):
        if not st.bursts:
            if direction != C2S:
                return None                                  # the sequence starts with the client
            st.bursts, st.burst_dir, st.burst_records = [min(BURST_BYTES, size)], C2S, 1
            return None
        if direction == st.burst_dir:
            if st.burst_records >= BURST_RECORDS:
                return None
            st.bursts[-1] = min(BURST_BYTES, st.bursts[-1] + size)
            st.burst_records += 1
            if len(st.bursts) == 4 and st.burst_records == BURST_RECORDS:
                return self._judge(st.bursts)
            return None
        if len(st.bursts) == 4:
            return self._judge(st.bursts)                    # the 4th burst ended
        st.bursts.append(min(BURST_BYTES, size))
        st.burst_dir, st.burst_records = direction, 1
        return None

    def _judge(self, bursts: list[int]):
        best = None
        for model in self.params["models"]:
            if bursts[0] < model.get("min_first", 0):
                continue
            d = burst_distance(bursts, model, self.params["spread"])
            if d < model["threshold"] and (best is None or d < best[0]):
                best = (d, model["name"])
        if best is None:
            return DONE
        return Detection("tls-in-tls", "burst-model", 0.8,
                         {"model": best[1], "distance": round(best[0], 2), "bursts": list(bursts)})
