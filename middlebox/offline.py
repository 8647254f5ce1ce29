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
alive at once. Each decided flow also names the record of the file that
decided it (``frame``: 1-based, as Wireshark numbers them), and the result
carries warnings a user of someone else's capture needs: a last record cut
short, and direction rules that found no flow starting inside.
"""

from __future__ import annotations

import ipaddress
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import budget
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
    frame: int | None = None          # the file's record (1-based, Wireshark's number) that decided

    def as_dict(self) -> dict:
        f = self.flow
        v = f.verdict
        out = {**f.id.as_dict(), "protocol": f.protocol, "rule": v.rule if v else None,
               "action": v.action if v else "allow", "decided": v is not None,
               "packet_index": v.packet_index if v else None, "frame": self.frame if v else None,
               "ms": round(v.ms, 3) if v else None,
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
    # Packets a classifier could not parse within the work budget (or raised
    # on): the last budget.UNPARSED_KEPT of stats["unparsed"], each naming its flow and packet.
    unparsed: list[budget.Unparsed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)    # one line each, for the user of the capture

    def summary(self) -> list[dict]:
        return [{"protocol": p, "rule": rule, "action": a, "flows": n}
                for (p, rule, a), n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def classify_pcap(path: str | Path, profile: Profile, seed: int | None = None,
                  on_flow: Callable[[FlowReport], None] | None = None) -> Result:
    """Classify every packet of *path*. With *on_flow*, each flow's report
    goes there (in the order the engine finishes with them) instead of into
    ``Result.flows``; the summary and stats are complete either way."""
    result = Result([])
    frames_of = _FrameBook()
    inside = _InsideWatch(profile)

    def finished(flow: Flow) -> None:
        report = FlowReport(flow, frames_of.pop(flow.verdict))
        v = flow.verdict
        result.counts[(flow.protocol or "-", (v.rule if v else None) or "-", v.action if v else "allow")] += 1
        inside.see(flow)
        if on_flow is not None:
            on_flow(report)
        else:
            result.flows.append(report)

    engine = Engine(profile, seed=seed, on_evict=finished)
    budget.last.clear()
    data, endian, tick, linktype = open_pcap(path)
    with fewer_collections():
        if linktype == ETHERNET and endian != "pcapng":
            cut = _run_ethernet(engine, data, endian, tick, frames_of)
        else:
            cut = []
            for number, (ts, frame) in enumerate(frames(path, on_truncated=cut.append), start=1):
                engine.feed(frame, ts)
                frames_of.note(engine.pending, number)
                engine.pending.clear()
    for flow in sorted(engine.all_flows(), key=lambda f: f.first_ts):
        finished(flow)
    if on_flow is None:
        result.flows.sort(key=lambda r: r.flow.first_ts)
    result.stats = {**engine.stats, "flows_live_at_end": engine.live, **{f"defrag_{k}": v for k, v in engine.defrag.stats.items()}}
    result.unparsed = list(budget.last)
    budget.stop()
    result.warnings += [f"{path}: {line}" for line in cut] + inside.warnings()
    return result


class _FrameBook:
    """The file's record number at which each verdict was reached: the
    engine leaves its verdicts in ``pending`` for the record it was fed, so
    they are noted here before the list is cleared, and handed out (and
    forgotten) when their flow is reported."""

    def __init__(self):
        self._frames: dict[int, tuple[object, int]] = {}

    def note(self, verdicts, number: int) -> None:
        for v in verdicts:
            self._frames[id(v)] = (v, number)        # the verdict is kept so its id is not reused

    def pop(self, verdict) -> int | None:
        entry = self._frames.pop(id(verdict), None) if verdict is not None else None
        return entry[1] if entry and entry[0] is verdict else None


class _InsideWatch:
    """Direction rules (``direction: outbound`` or ``inbound``) act only on
    flows that cross the border the profile's ``inside`` networks draw. In
    someone else's capture none may: no client inside at all, or both ends
    inside. Then those rules never fire, and the user is told so
    (``classify --inside`` names the capture's own inside networks)."""

    def __init__(self, profile: Profile):
        self.rules = [r.name for r in profile.rules
                      if r.match.direction or (r.unless is not None and r.unless.direction)]
        self.inside = profile.inside
        self.flows = self.started_inside = 0
        self.crossed = not self.rules

    def _in(self, address: bytes) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.inside)

    def see(self, flow: Flow) -> None:
        self.flows += 1
        if not self.crossed:
            client_in, server_in = self._in(flow.client), self._in(flow.server)
            self.started_inside += client_in
            self.crossed = client_in != server_in

    def warnings(self) -> list[str]:
        if self.crossed or not self.flows:
            return []
        nets = ", ".join(str(n) for n in self.inside) or "none"
        why = (f"no flow was started from inside ({nets})" if not self.started_inside else
               f"every flow stayed on one side of the border: the {self.started_inside} started inside ({nets}) "
               f"went to servers inside too")
        return [f"{why}, so the direction rule(s) {', '.join(self.rules)} never applied: "
                f"name this capture's inside networks with --inside CIDR[,CIDR...]"]


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


def _run_ethernet(engine: Engine, data, endian: str, tick: float, frames_of: _FrameBook | None = None) -> list[str]:
    """Every record through the engine's fast path on the mapped file; only
    packets it does not take are cut out and parsed. The C walk, when built,
    takes runs of packets that only count first (decided flows' packets,
    their FINs and RSTs, plain ACKs of flows under inspection, in-order data
    of flows only tls-in-tls or OpenVPN's opcode test still watches) and says of
    the record it stops at whether ``fast`` may take it (an expiry deadline,
    a freeze count, the end of a window of pages) or it needs the slow path.
    Returns a warning if the last record is cut short."""
    header = struct.Struct(endian + "III").unpack_from        # ts_sec, ts_frac, caplen
    fast, slow, pending, expiry, flows = engine.fast, engine.feed_slow, engine.pending, engine.expiry, engine.flows
    walk, big = (_fastpath.walk if _fastpath is not None else _walk_nothing), endian == ">"
    quiet, watch = engine.quiet_acks, engine.watch
    offset, end, n, blocked = 24, len(data), 0, 0
    releasable = hasattr(data, "madvise")
    released = 0
    cut: list[str] = []
    frames_of = frames_of or _FrameBook()
    while True:
        offset, taken, held, python_fast = walk(flows, data, offset, big, tick, expiry[0][0] if expiry else _NEVER,
                                                *quiet, released + RELEASE_EVERY if releasable else end, watch)
        n += taken
        blocked += held
        if releasable and offset - released >= RELEASE_EVERY:
            released = _let_go(data, released, offset)
        if offset + 16 > end:
            if offset < end:
                cut.append(f"frame {n + 1} is cut short in its record header ({end - offset} of 16 bytes); "
                           f"it was not read")
            break
        sec, frac, caplen = header(data, offset)
        start = offset + 16
        offset = start + caplen
        if offset > end:
            cut.append(f"frame {n + 1} is cut short ({end - start} of {caplen} bytes; the capture was "
                       f"probably stopped while writing it); it was not read")
            break
        n += 1
        ts = sec + frac * tick
        if not python_fast or fast(data, start, offset, ts) is None:
            slow(data[start:offset], ts)
        if pending:
            # Verdicts are kept on their flows; the live daemon drains this
            # list, offline nobody would, and it would grow with the capture.
            frames_of.note(pending, n)
            pending.clear()
    engine.stats["packets"] += n
    engine.stats["blocked_packets"] += blocked
    return cut
