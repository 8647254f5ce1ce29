"""Offline classification of a capture: the engine over a pcap file.

The live censor and this share one engine and one fast path
(:meth:`Engine.fast`); here it reads the memory-mapped file in place, so a
decided flow's packet is never copied. When the C walk
(``middlebox/_fastpath.c``) is built, it takes the packets of decided flows
in runs, doing what ``Engine.fast`` does for them, and hands every other
record to the engine; without it the same loop runs in Python.

Every flow is reported, including those the engine let go of (idle, table
full, or replaced by a new connection on the same 5-tuple), with packet and
byte counts for the whole flow. ``on_flow`` streams each flow's report as soon as the engine is done
with it, so a caller that does not keep them needs memory only for the flows
alive at once.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .classifiers import openvpn, tlsintls
from .engine import Engine, fewer_collections
from .flow import Flow
from .pcap import ETHERNET, frames, open_pcap
from .profiles import Profile
from .stream import Stream

try:
    from . import _fastpath           # optional C walk (setup.py builds it when a compiler is there)
    _fastpath.setup(Flow)
    _fastpath.setup_watch(Stream, tlsintls._State, openvpn._State)
except ImportError:                    # pragma: no cover - the pure-Python loop below does the same
    _fastpath = None
_NEVER = float("inf")
RELEASE_EVERY = 64 << 20          # bytes of the mapped capture read before their pages are let go


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
    counts: Counter = field(default_factory=Counter)     # (protocol, rule, action) -> flows

    def summary(self) -> list[dict]:
        return [{"protocol": p, "rule": rule, "action": a, "flows": n}
                for (p, rule, a), n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def classify_pcap(path: str | Path, profile: Profile, seed: int | None = None,
                  on_flow: Callable[[FlowReport], None] | None = None) -> Result:
    """Classify every packet of *path*. With *on_flow*, each flow's report
    goes there (in the order the engine finishes with them) instead of into
    ``Result.flows``; the summary and stats are complete either way."""
    result = Result([])

    def finished(flow: Flow) -> None:
        report = FlowReport(flow)
        v = flow.verdict
        result.counts[(flow.protocol or "-", (v.rule if v else None) or "-", v.action if v else "allow")] += 1
        if on_flow is not None:
            on_flow(report)
        else:
            result.flows.append(report)

    engine = Engine(profile, seed=seed, on_evict=finished)
    data, endian, tick, linktype = open_pcap(path)
    with fewer_collections():
        if linktype == ETHERNET and endian != "pcapng":
            _run_ethernet(engine, data, endian, tick)
        else:
            for ts, frame in frames(path):
                engine.feed(frame, ts)
                engine.pending.clear()
    for flow in sorted(engine.all_flows(), key=lambda f: f.first_ts):
        finished(flow)
    if on_flow is None:
        result.flows.sort(key=lambda r: r.flow.first_ts)
    result.stats = {**engine.stats, "flows_live_at_end": engine.live, **{f"defrag_{k}": v for k, v in engine.defrag.stats.items()}}
    return result


def _let_go(data, start: int, end: int) -> int:
    """Pages of the mapped capture already read leave this process (they
    stay in the page cache), so its resident size is the flow table plus a
    window of the file, not the whole capture. Nothing refers to them: what
    the engine keeps it has copied. Returns where the next release starts."""
    upto = end - end % mmap.PAGESIZE
    if upto > start:
        data.madvise(mmap.MADV_DONTNEED, start, upto - start)
    return max(start, upto)


def _walk_nothing(flows, data, offset, big, tick, expiry_at, quiet_data=0, quiet_packets=0, limit=0, watch=None):
    """Without the C walk: take no packet, and let ``Engine.fast`` try each."""
    return offset, 0, 0, 1


def _run_ethernet(engine: Engine, data, endian: str, tick: float) -> None:
    """Every record through the engine's fast path on the mapped file; only
    packets it does not take are cut out and parsed. The C walk, when built,
    takes runs of packets that only count first (decided flows' packets,
    their FINs and RSTs, plain ACKs of flows under inspection, in-order data
    of flows only tls-in-tls or OpenVPN's opcode test still watches) and says of
    the record it stops at whether ``fast`` may take it (an expiry deadline,
    a freeze count, the end of a window of pages) or it needs the slow path."""
    header = struct.Struct(endian + "III").unpack_from        # ts_sec, ts_frac, caplen
    fast, slow, pending, expiry, flows = engine.fast, engine.feed_slow, engine.pending, engine.expiry, engine.flows
    walk, big = (_fastpath.walk if _fastpath is not None else _walk_nothing), endian == ">"
    quiet, watch = engine.quiet_acks, engine.watch
    offset, end, n, blocked = 24, len(data), 0, 0
    releasable = hasattr(data, "madvise")
    released = 0
    while True:
        offset, taken, held, python_fast = walk(flows, data, offset, big, tick, expiry[0][0] if expiry else _NEVER,
                                                *quiet, released + RELEASE_EVERY if releasable else end, watch)
        n += taken
        blocked += held
        if releasable and offset - released >= RELEASE_EVERY:
            released = _let_go(data, released, offset)
        if offset + 16 > end:
            break
        sec, frac, caplen = header(data, offset)
        start = offset + 16
        offset = start + caplen
        if offset > end:
            break                                              # a truncated last record
        n += 1
        ts = sec + frac * tick
        if not python_fast or fast(data, start, offset, ts) is None:
            slow(data[start:offset], ts)
        if pending:
            # Verdicts are kept on their flows; the live daemon drains this
            # list, offline nobody would, and it would grow with the capture.
            pending.clear()
    engine.stats["packets"] += n
    engine.stats["blocked_packets"] += blocked
