"""Residual blocking: what the censor holds against a server after a verdict.

The GFW keeps blocking the server 3-tuple (client IP, server IP, server
port) for a while after it blocked a connection: 90 s for its HTTP and TLS
blocking (Bock et al., "Detecting and Evading Censorship-in-Depth", 2021).
After active probing confirmed a proxy, the server's port is blocked for
every client (Alice et al. 2020). Both kinds live here, keyed by the raw
addresses the engine already has, so offline classification of a capture
sees them exactly like the live censor. Their record outside the engine is
:class:`tunnelwall.base.verdict.ResidualBlock`.
"""

from __future__ import annotations

import math

from .profiles import Match, Rule

ANY_CLIENT = b"*"             # the key's client of a server blocked for every client (after probing)
SWEEP_ABOVE = 1024            # past this many blocks, expired ones are swept (they also go when looked up)

Key = tuple[int, bytes, bytes, int]           # (protocol, client or ANY_CLIENT, server, server port)


class ResidualTable:
    def __init__(self):
        self.blocks: dict[Key, tuple[float, Rule, str]] = {}     # key -> (until, rule, action)

    def __len__(self) -> int:
        return len(self.blocks)

    def holding(self, proto: int, client: bytes, server: bytes, port: int, now: float):
        """(until, rule, action) of a block on this client's (or every
        client's) way to *server*:*port* still running at *now*, else None.
        Expired blocks met on the way are dropped."""
        for who in (client, ANY_CLIENT):
            key = (proto, who, server, port)
            blocked = self.blocks.get(key)
            if blocked is None:
                continue
            if now < blocked[0]:
                return blocked
            del self.blocks[key]
        return None

    def block_three_tuple(self, proto: int, client: bytes, server: bytes, port: int, until: float,
                          rule: Rule) -> None:
        self.blocks[(proto, client, server, port)] = (until, rule, "drop")

    def block_server(self, proto: int, server: bytes, port: int, seconds: float | None, rule_name: str,
                     action: str, now: float) -> None:
        """Block *server*:*port* for every client (a server the prober
        confirmed): new flows to it get *action* (``drop``, or ``reset`` for
        a censor that answers them with RSTs) for *seconds* (None: the run)."""
        until = math.inf if seconds is None else now + seconds
        self.blocks[(proto, ANY_CLIENT, server, port)] = (until, Rule(rule_name, Match(), action), action)

    def clear(self) -> None:
        self.blocks.clear()

    def sweep(self, now: float) -> None:
        if len(self.blocks) > SWEEP_ABOVE:
            for key in [k for k, (until, _r, _a) in self.blocks.items() if until <= now]:
                del self.blocks[key]
