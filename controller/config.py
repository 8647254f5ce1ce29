"""The controller's configuration: what the runtime writes to
``controller.json`` for ``python -m tunnelwall.controller.run --config FILE``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SwitchPort:
    """One port of the border switch and what is plugged into it."""

    iface: str
    mac: str
    peer: str
    peer_mac: str


@dataclass(frozen=True)
class ProbeTiming:
    delay: float = 0.5
    count: int = 8
    timeout: float = 3.0


@dataclass
class ControllerConfig:
    dpid: int
    ports: dict[int, SwitchPort]
    middlebox_port: int
    placement: str                      # inline | tap
    fail: str                           # closed | open: while the middlebox is away
    profile: str
    socket: str                         # the Unix socket the middlebox and prober connect to
    verdict_log: str
    of_port: int
    api_port: int
    api_token: str
    offload: str = "conntrack"          # conntrack | rules
    rule_idle_timeout: int = 60
    probe: ProbeTiming = field(default_factory=ProbeTiming)
    ct_zone: int | None = None          # conntrack offload
    bypass_vlan: int | None = None      # conntrack offload
    prober_port: int | None = None
    prober_mac: str | None = None
    topology: dict = field(default_factory=lambda: {"nodes": [], "links": []})   # the live view's drawing, as is

    @classmethod
    def from_dict(cls, d: dict) -> ControllerConfig:
        ports = {int(p): SwitchPort(str(i.get("iface", "")), str(i.get("mac", "")), str(i["peer"]),
                                    str(i["peer_mac"])) for p, i in d["ports"].items()}
        return cls(dpid=int(d["dpid"]), ports=ports, middlebox_port=int(d["middlebox_port"]),
                   placement=str(d["placement"]), fail=str(d["fail"]), profile=str(d["profile"]),
                   socket=str(d["socket"]), verdict_log=str(d["verdict_log"]), of_port=int(d["of_port"]),
                   api_port=int(d["api_port"]), api_token=str(d["api_token"]),
                   offload=str(d.get("offload", "conntrack")), rule_idle_timeout=int(d.get("rule_idle_timeout", 60)),
                   probe=ProbeTiming(**d.get("probe", {})), ct_zone=d.get("ct_zone"), bypass_vlan=d.get("bypass_vlan"),
                   prober_port=d.get("prober_port"), prober_mac=d.get("prober_mac"),
                   topology=d.get("topology") or {"nodes": [], "links": []})

    @classmethod
    def read(cls, path: str | Path) -> ControllerConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ports"] = {str(p): asdict(i) for p, i in self.ports.items()}
        return out
