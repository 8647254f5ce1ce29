"""Units in YAML values: bandwidths (topology links, profile throttles)."""

from __future__ import annotations

import re
from typing import Any

BANDWIDTH_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)(bit|bps)?\s*$", re.I)


def parse_bandwidth(value: Any) -> float:
    """'100Mbit' / '1gbit' / '500kbit' / 100 (Mbit/s) -> Mbit/s."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(value)
        return float(value)
    m = BANDWIDTH_RE.match(str(value))
    if not m:
        raise ValueError(value)
    number, prefix, unit = float(m.group(1)), m.group(2).lower(), (m.group(3) or "bit").lower()
    mbit = number * {"k": 1e-3, "": 1e-6, "m": 1.0, "g": 1e3}[prefix]
    if prefix == "" and m.group(3) is None:
        mbit = number  # a bare number means Mbit/s
    if unit == "bps":
        mbit *= 8
    if mbit <= 0:
        raise ValueError(value)
    return mbit
