"""Fully encrypted traffic (FET): the GFW's entropy-based blocking.

Source: Wu, Zohaib, Durumeric, Houmansadr, Wustrow, "How the Great Firewall
of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023,
sections 4-7 (algorithm in section 4, exemption rules Ex1-Ex5 in 4.1-4.5,
probabilistic blocking in 5, residual censorship in 6); the authors'
artifact ``artifacts/utils/detect.py`` is the reference for edge cases.

The censor's model, as measured (Nov 2021 - Mar 2023):

* only the **first client-to-server data packet** of a TCP connection is
  examined; UDP is not affected; every TCP port is;
* the connection is *exempt* if any of:

  - Ex1: average set bits per byte <= 3.4 or >= 4.6 (random data averages 4.0);
  - Ex2: the first 6 bytes are all printable ASCII (0x20-0x7e);
  - Ex3: more than 50% of the bytes are printable;
  - Ex4: more than 20 contiguous bytes are printable;
  - Ex5: it starts like TLS (0x16/0x17, 0x03, 0x00-0x09; the artifact accepts
    up to 0x0f, hence the ``tls_max_minor`` parameter) or HTTP
    (``GET ``, ``PUT ``, ``POST ``, ``HEAD ``);

* non-exempt connections are blocked with probability ~26.3% (a *rule*
  parameter in the profile, not part of this classifier), after which the
  server 3-tuple is blocked for 180 s (the rule's ``residual``).

This classifier reports which exemption applied (``detail``) or that none did.
"""

from __future__ import annotations

from ..packet import TCP
from .base import C2S, DONE, Classifier, Detection

HTTP_PREFIXES = (b"GET ", b"PUT ", b"POST ", b"HEAD ")


def popcount_per_byte(payload: bytes) -> float:
    return int.from_bytes(payload, "big").bit_count() / len(payload)


def printable_count(payload: bytes) -> int:
    # translate(None, delete) deletes the printable bytes in C; what is left is not printable.
    return len(payload) - len(payload.translate(None, _PRINTABLE_SET))


_PRINTABLE_SET = bytes(range(0x20, 0x7F))
# Every byte as "p" (printable) or "." (not): a run of n printable bytes is
# then a substring search for "p" * n, both in C.
_MARK = bytes(0x70 if 0x20 <= i <= 0x7E else 0x2E for i in range(256))


def has_printable_run_longer_than(payload: bytes, n: int) -> bool:
    """Whether some run of printable bytes is longer than *n*, without
    listing the runs (a regex's findall makes a bytes object per run:
    hundreds for the random-looking packets this classifier mostly sees)."""
    return b"p" * (n + 1) in payload.translate(_MARK)


def exemption(payload: bytes, popcount_low: float = 3.4, popcount_high: float = 4.6, printable_prefix: int = 6,
              printable_fraction: float = 0.5, printable_run: int = 20, tls_max_minor: int = 9) -> str | None:
    """The first exemption (Ex1..Ex5) that applies to *payload*, or None
    when the payload looks fully encrypted. Pure function of the bytes."""
    if not payload:
        return "empty"
    avg = popcount_per_byte(payload)
    if avg <= popcount_low or avg >= popcount_high:
        return "Ex1"
    if not payload[:printable_prefix].translate(None, _PRINTABLE_SET):
        return "Ex2"
    if printable_count(payload) > printable_fraction * len(payload):
        return "Ex3"
    if has_printable_run_longer_than(payload, int(printable_run)):
        return "Ex4"
    if len(payload) >= 3 and payload[0] in (0x16, 0x17) and payload[1] == 0x03 and payload[2] <= tls_max_minor:
        return "Ex5"
    if payload.startswith(HTTP_PREFIXES):
        return "Ex5"
    return None


class FET(Classifier):
    name = "fet"
    transports = frozenset({TCP})
    DEFAULTS = {"popcount_low": 3.4, "popcount_high": 4.6, "printable_prefix": 6, "printable_fraction": 0.5,
                "printable_run": 20, "tls_max_minor": 9}

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return None
        payload = pkt.payload
        reason = exemption(payload, **self.params)
        if reason is not None:
            flow.notes["fet"] = f"exempt {reason} (first data packet: {len(payload)} bytes, {payload[:8].hex()}...)"
            return DONE
        return Detection("fet", "no-exemption", 0.8,
                         {"popcount": round(popcount_per_byte(payload), 3), "length": len(payload)})
