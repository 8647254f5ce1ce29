"""IP protocol numbers and the names tunnelwall writes for them: the one
table the middlebox, the controller, the harness and reports share."""

from __future__ import annotations

ICMP, TCP, GRE, UDP, ESP, ICMPV6 = 1, 6, 47, 17, 50, 58

NAMES: dict[int, str] = {TCP: "tcp", UDP: "udp", GRE: "gre", ICMP: "icmp", ESP: "esp", ICMPV6: "icmpv6"}
NUMBERS: dict[str, int] = {name: number for number, name in NAMES.items()}


def name_of(number: int) -> str:
    """``tcp`` for 6; a protocol without a name is written as its number."""
    return NAMES.get(number, str(number))


def number_of(name: str) -> int | None:
    """6 for ``tcp``; None for a name not in the table."""
    return NUMBERS.get(name)
