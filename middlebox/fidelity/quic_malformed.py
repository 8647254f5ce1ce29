"""The ten malformed or unusual QUIC Initials of Zohaib et al. (USENIX
Security 2025, Table 3), as the fidelity verb's vector set. The cases and
their byte builders are :mod:`.quic_table3`'s; each is the first datagram
of its own flow, from a source port above the destination port, naming a
name on gfw-2025's list."""

from __future__ import annotations

from . import BLOCKED, NOT_BLOCKED, Vector
from .capture import udp
from .quic_table3 import DEFAULT_NAME, SOURCE
from .quic_table3 import VECTORS as CASES


def _vector(case) -> Vector:
    return Vector("quic-table3", f"case {case.case}: {case.what}", lambda: udp([case.build(DEFAULT_NAME)]),
                  BLOCKED if case.blocked else NOT_BLOCKED, SOURCE, ("gfw-2025",))


VECTORS = [_vector(case) for case in CASES]
