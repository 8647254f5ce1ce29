"""Active probing as the controller asks for it and records it: pure
functions from a verdict to the prober's request, and from the prober's
answer to the log record and the block a confirmation brings (the server's
port blocked for every client, Alice et al. 2020, section 6)."""

from __future__ import annotations

import math
import time

from tunnelwall.base.verdict import ANY_CLIENT, ResidualBlock, Verdict

from .config import ProbeTiming


def probe_request(verdict: Verdict, timing: ProbeTiming, seed: int | None = None) -> dict:
    """The prober's request for the verdict's server (TCP servers only)."""
    f = verdict.flow
    return {"type": "probe", "server": f.server, "port": f.server_port, "rule": verdict.rule,
            "protocol": verdict.protocol, "then": verdict.then or "drop", "residual": verdict.residual,
            "first_payload": verdict.first_payload or "", "delay": timing.delay, "count": timing.count,
            "timeout": timing.timeout, "seed": int(time.time() * 1000) & 0xFFFF if seed is None else seed}


def probe_record(msg: dict, profile: str, now: float) -> dict:
    """The verdict log's record of the prober's answer *msg*."""
    req = msg["request"]
    return {"time": now, "type": "probe", "profile": profile, "server": req["server"], "server_port": req["port"],
            "rule": req.get("rule"), "fingerprint": msg["fingerprint"], "confirmed": msg["confirmed"],
            "reactions": msg["reactions"]}


def confirmed_block(req: dict, now: float) -> ResidualBlock:
    """What a confirmation brings: the server's port blocked for every client,
    silently on the switch (then: drop) or by the middlebox answering new
    connections with RSTs (then: reset), for the rule's residual time or the run."""
    residual = req.get("residual")
    return ResidualBlock("tcp", ANY_CLIENT, req["server"], req["port"], f"{req.get('rule')}+probe",
                         req.get("then") or "drop", now + float(residual) if residual else math.inf)
