"""The live middlebox's configuration: what the runtime writes to
``middlebox.json`` for ``python -m tunnelwall.middlebox.daemon --config FILE``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class MiddleboxConfig:
    iface: str                         # the middlebox node's port on the border switch
    profile: str                       # a profile name or file
    placement: str                     # inline | tap
    socket: str                        # the controller's Unix socket
    seed: int | None = None            # None: the profile's
    overrides: list[str] = field(default_factory=list)   # RULE.FIELD=VALUE, as verify --set
    offload: str = "conntrack"         # conntrack | rules (flows.offload, fixed for the run)
    bypass_vlan: int | None = None     # conntrack offload: the tag that lets an allowed flow by
    heartbeat: str | None = None       # the file the loop's sign of life goes to (the supervisor's watchdog)

    @classmethod
    def from_dict(cls, d: dict) -> MiddleboxConfig:
        return cls(iface=str(d["iface"]), profile=str(d["profile"]), placement=str(d["placement"]),
                   socket=str(d["socket"]), seed=d.get("seed"), overrides=list(d.get("overrides") or []),
                   offload=str(d.get("offload", "conntrack")), bypass_vlan=d.get("bypass_vlan"),
                   heartbeat=d.get("heartbeat"))

    @classmethod
    def read(cls, path: str | Path) -> MiddleboxConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def inline(self) -> bool:
        return self.placement == "inline"

    @property
    def tag_vlan(self) -> int | None:
        """The bypass tag, with conntrack offload only."""
        return self.bypass_vlan if self.offload == "conntrack" else None
