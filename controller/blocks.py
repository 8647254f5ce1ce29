"""The controller's book of residual blocks: what it holds against servers
(a 3-tuple after a blocking verdict with a residual time, or a server's
port for every client after probing confirmed it), with their expiry. A
restarted controller rebuilds it from the verdict log; a restarted
middlebox gets it back (``restore``); the switch gets it back on connect."""

from __future__ import annotations

import math

from tunnelwall.base.verdict import ANY_CLIENT, LoggedVerdict, ResidualBlock


class BlockBook:
    def __init__(self):
        self.blocks: dict[tuple, ResidualBlock] = {}   # by 3-tuple (client "*": every client)

    def __len__(self) -> int:
        return len(self.blocks)

    def add(self, block: ResidualBlock | None) -> None:
        if block is not None:
            self.blocks[block.key] = block

    def remember_logged(self, record: dict) -> None:
        """A residual block still running in a record of the verdict log: a
        confirmed probe's, or a blocking verdict's with a residual time."""
        at = record.get("time", 0.0)
        if record.get("type") == "probe":
            if record.get("confirmed"):
                residual = record.get("residual")
                self.add(ResidualBlock("tcp", ANY_CLIENT, record["server"], record["server_port"],
                                       f"{record.get('rule')}+probe", "drop", at + residual if residual else math.inf))
            return
        logged = LoggedVerdict.from_record(record)
        if logged is not None:
            self.add(ResidualBlock.from_verdict(logged.verdict, at))

    def live(self, now: float) -> list[ResidualBlock]:
        """The blocks still running (expired ones are dropped)."""
        for key in [k for k, b in self.blocks.items() if b.until <= now]:
            del self.blocks[key]
        return list(self.blocks.values())

    def as_api(self, now: float) -> list[dict]:
        return [b.as_dict(now) for b in self.live(now)]

    def clear(self) -> int:
        count = len(self.blocks)
        self.blocks.clear()
        return count
