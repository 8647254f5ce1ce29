"""The fully-encrypted-traffic rule at its published boundaries (Ex1-Ex5).

Wu, Zohaib, Durumeric, Houmansadr, Wustrow, "How the Great Firewall of
China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023,
section 4 (the exemptions, measured at their edges) and section 5 (a
connection that no exemption spares is blocked with probability 0.263;
here the probability is 1, the rate is a reference row). The rule ceased
between 2023-03-07 and 2023-03-15 (the paper's artifact): gfw-2025 must
not block.
"""

from __future__ import annotations

import random

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import Tcp

P3, P4, P5 = b"\x83", b"\xf0", b"\xf8"          # non-printable bytes with 3, 4, 5 bits set; "U" is printable with 4
SOURCE = "Wu et al., USENIX Security 2023, section 4"
RANDOM = random.Random(2023).randbytes(400)


def _first_packet(payload: bytes):
    return lambda: Tcp(dport=8388).handshake().data(payload).frames


BOUNDARIES = [
    ("Ex1: 3.4 set bits per byte (exempt)", P3 * 6 + P4 * 4, NOT_BLOCKED),
    ("Ex1: 3.5 set bits per byte", P3 * 5 + P4 * 5, BLOCKED),
    ("Ex1: 4.6 set bits per byte (exempt)", P4 * 4 + P5 * 6, NOT_BLOCKED),
    ("Ex1: 4.5 set bits per byte", P4 * 5 + P5 * 5, BLOCKED),
    ("Ex2: first 6 bytes printable (exempt)", b"U" * 6 + P4 * 44, NOT_BLOCKED),
    ("Ex2: first 5 bytes printable", b"U" * 5 + P4 * 45, BLOCKED),
    ("Ex3: 66 % printable (exempt)", (P4 + b"UU") * 17, NOT_BLOCKED),
    ("Ex3: exactly 50 % printable", (P4 + b"U") * 25, BLOCKED),
    ("Ex4: a printable run of 21 (exempt)", P4 + b"U" * 21 + P4 * 40, NOT_BLOCKED),
    ("Ex4: a printable run of 20", P4 + b"U" * 20 + P4 * 41, BLOCKED),
    ("Ex5: starts 16 03 09, like TLS (exempt)", b"\x16\x03\x09" + P4 * 47, NOT_BLOCKED),
    ("Ex5: starts 16 03 0a, past TLS's range", b"\x16\x03\x0a" + P4 * 47, BLOCKED),
    ("Ex5: starts 'GET ' (exempt)", b"GET " + P4 * 46, NOT_BLOCKED),
    ("400 random bytes", RANDOM, BLOCKED),
]

VECTORS = [
    *(Vector("fet-boundaries", name, _first_packet(payload), outcome, SOURCE, ("gfw-2022",))
      for name, payload, outcome in BOUNDARIES),
    Vector("fet-boundaries", "400 random bytes, after the rule ceased", _first_packet(RANDOM), NOT_BLOCKED,
           "Wu et al. 2023, artifact (dynamic blocking ceased 2023-03-07..15)", ("gfw-2025",)),
]
