"""Offline classification of a capture: the engine over a pcap file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine
from .flow import Flow
from .pcap import frames
from .profiles import Profile


@dataclass
class FlowReport:
    flow: Flow

    def as_dict(self) -> dict:
        f = self.flow
        v = f.verdict
        out = {**f.id.as_dict(), "protocol": f.protocol, "rule": v.rule if v else None,
               "action": v.action if v else "allow", "decided": v is not None,
               "packet_index": v.packet_index if v else None, "ms": round(v.ms, 3) if v else None,
               "packets": f.packets, "bytes": f.bytes}
        if v and v.note:
            out["note"] = v.note
        if v and v.detection:
            out["detection"] = v.detection.as_dict()
        elif f.detections:
            out["detection"] = max(f.detections, key=lambda d: d.confidence).as_dict()
        return out


@dataclass
class Result:
    flows: list[FlowReport]
    stats: dict = field(default_factory=dict)

    def summary(self) -> list[dict]:
        counts = Counter((r.flow.protocol or "-", (r.flow.verdict.rule if r.flow.verdict else None) or "-",
                          r.flow.verdict.action if r.flow.verdict else "allow") for r in self.flows)
        return [{"protocol": p, "rule": rule, "action": a, "flows": n}
                for (p, rule, a), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def classify_pcap(path: str | Path, profile: Profile, seed: int | None = None) -> Result:
    engine = Engine(profile, seed=seed)
    feed = engine.feed
    for ts, frame in frames(path):
        feed(frame, ts)
    seen, flows = set(), []
    for flow, _direction in engine.flows.values():
        if id(flow) not in seen:
            seen.add(id(flow))
            flows.append(FlowReport(flow))
    flows.sort(key=lambda r: r.flow.first_ts)
    return Result(flows, dict(engine.stats))
