"""The censor's decisions as they cross process boundaries: one wire type.

The middlebox decides (:class:`Verdict`), the controller turns a verdict
into flow rules and logs it, the harness and the reports read the log. All
of them use these dataclasses and their JSON form (``as_dict`` /
``from_dict``), described by ``verdict.schema.json`` beside this file, so
no layer reads another's dictionaries by key. Residual blocks (a server
3-tuple blocked for a while, or a server blocked for every client after
probing) have one record, :class:`ResidualBlock`, wherever they are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANY_CLIENT = "*"          # a residual block's client when the server is blocked for everyone
SCHEMA = Path(__file__).with_name("verdict.schema.json")   # the wire form's JSON Schema


@dataclass(frozen=True)
class FlowId:
    transport: str
    client: str
    client_port: int
    server: str
    server_port: int

    def __str__(self) -> str:
        if ":" in self.client:
            return f"{self.transport} [{self.client}]:{self.client_port} -> [{self.server}]:{self.server_port}"
        return f"{self.transport} {self.client}:{self.client_port} -> {self.server}:{self.server_port}"

    def as_dict(self) -> dict:
        return {"transport": self.transport, "client": self.client, "client_port": self.client_port,
                "server": self.server, "server_port": self.server_port}

    @classmethod
    def from_dict(cls, d: dict) -> FlowId:
        return cls(str(d["transport"]), str(d["client"]), int(d["client_port"]), str(d["server"]),
                   int(d["server_port"]))

    @property
    def has_ports(self) -> bool:
        """Whether the switch can hold a rule for it (both ports known)."""
        return bool(self.client_port and self.server_port)


@dataclass(frozen=True)
class Detection:
    protocol: str                   # e.g. "openvpn", "wireguard", "fet", "tls", "dns"
    signal: str                     # which test fired, e.g. "hard-reset-handshake"
    confidence: float = 1.0         # 0..1
    detail: dict = field(default_factory=dict)   # e.g. {"sni": "x.example"}

    def as_dict(self) -> dict:
        return {"protocol": self.protocol, "signal": self.signal, "confidence": round(self.confidence, 3),
                **({"detail": self.detail} if self.detail else {})}

    @classmethod
    def from_dict(cls, d: dict) -> Detection:
        return cls(str(d["protocol"]), str(d["signal"]), float(d.get("confidence", 1.0)), dict(d.get("detail") or {}))


BLOCKING_ACTIONS = frozenset({"drop", "reset"})
# The optional fields of the wire form, written only when set.
_OPTIONAL = ("residual", "rate_kbit", "answer", "then", "after_bytes", "resets", "first_payload")


@dataclass
class Verdict:
    flow: FlowId
    action: str                       # allow / log / drop / reset / throttle / freeze / forge-dns / probe
    rule: str | None = None
    protocol: str | None = None
    packet_index: int = 0             # 1-based index in the flow of the packet that decided
    ms: float = 0.0                   # since the flow's first packet
    residual: float | None = None     # seconds the server 3-tuple stays blocked (drop/reset)
    rate_kbit: int | None = None      # throttle
    answer: str | None = None         # forge-dns
    then: str | None = None           # probe: what a confirmed server gets
    after_bytes: int | None = None    # freeze
    resets: dict | None = None        # reset: the RSTs' shape (count, windows)
    detection: Detection | None = None
    note: str = ""
    time: float = 0.0                 # when it was decided (capture time offline)
    first_payload: str | None = None  # probe: the client's first payload (hex), which the prober replays
    # The engine's own record of the flow's detections; not on the wire.
    detections: list = field(default_factory=list, compare=False)
    notes: dict = field(default_factory=dict)     # classifiers' reasons for not matching (wire: why_not)

    @property
    def blocks(self) -> bool:
        return self.action in BLOCKING_ACTIONS

    @property
    def first_seen(self) -> float:
        """When the flow's first packet was seen."""
        return self.time - self.ms / 1000.0

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"time": round(self.time, 6), "flow": self.flow.as_dict(), "protocol": self.protocol,
                               "rule": self.rule, "action": self.action, "packet_index": self.packet_index,
                               "ms": round(self.ms, 3)}
        for key in _OPTIONAL:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.detection is not None:
            out["detection"] = self.detection.as_dict()
        if self.note:
            out["note"] = self.note
        if self.notes:
            out["why_not"] = self.notes
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        det = d.get("detection")
        return cls(flow=FlowId.from_dict(d["flow"]), action=str(d["action"]), rule=d.get("rule"),
                   protocol=d.get("protocol"), packet_index=int(d.get("packet_index", 0)),
                   ms=float(d.get("ms", 0.0)), residual=d.get("residual"), rate_kbit=d.get("rate_kbit"),
                   answer=d.get("answer"), then=d.get("then"), after_bytes=d.get("after_bytes"),
                   resets=d.get("resets"), detection=Detection.from_dict(det) if det else None,
                   note=str(d.get("note", "")), time=float(d.get("time", 0.0)),
                   first_payload=d.get("first_payload"), notes=dict(d.get("why_not") or {}))


@dataclass
class ResidualBlock:
    """A server 3-tuple (or, with client ``*``, the server's port for every
    client) blocked until ``until`` (``inf``: for the run)."""

    transport: str
    client: str
    server: str
    server_port: int
    rule: str | None
    action: str = "drop"
    until: float = math.inf

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.transport, self.client, self.server, self.server_port)

    def seconds_left(self, now: float) -> float | None:
        return None if self.until == math.inf else round(self.until - now, 1)

    def as_dict(self, now: float) -> dict:
        """The API's form (``/api/blocks``): the time left, None for the run."""
        return {"transport": self.transport, "client": self.client, "server": self.server,
                "server_port": self.server_port, "rule": self.rule, "action": self.action,
                "until": None if self.until == math.inf else self.until, "seconds_left": self.seconds_left(now)}

    @classmethod
    def from_api(cls, d: dict) -> ResidualBlock:
        """The API's form back (``until`` None: for the run)."""
        until = d.get("until")
        return cls(str(d["transport"]), str(d["client"]), str(d["server"]), int(d["server_port"]), d.get("rule"),
                   str(d.get("action", "drop")), math.inf if until is None else float(until))

    @classmethod
    def from_verdict(cls, verdict: Verdict, at: float) -> ResidualBlock | None:
        """The block a verdict asks for (a drop or reset with a residual time), if any."""
        if not verdict.residual or verdict.action not in BLOCKING_ACTIONS:
            return None
        f = verdict.flow
        return cls(f.transport, f.client, f.server, f.server_port, verdict.rule, "drop", at + float(verdict.residual))


@dataclass
class LoggedVerdict:
    """A verdict as the controller logged it (one line of the verdict log,
    one item of ``/api/verdicts``): the verdict, and what the controller
    added (when it logged it, under which profile, whether rules went on,
    whether it asked the prober). ``record`` is the line as written, for
    results files that keep it whole."""

    verdict: Verdict
    time: float                      # when the controller logged it
    profile: str | None = None
    installed: bool = False
    probe_requested: bool = False
    record: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_record(cls, d: dict) -> LoggedVerdict | None:
        """None for the log's other records (probe results, watchdog stalls)."""
        if "flow" not in d or "action" not in d:
            return None
        probe = d.get("probe") or {}
        return cls(Verdict.from_dict(d), float(d.get("time", 0.0)), d.get("profile"), bool(d.get("installed")),
                   bool(probe.get("requested")), d)
