"""The censor's flow table: one entry per live flow, under both keys.

A flow is filed under its key in each direction (``flows[key] = (flow,
direction)``), so a packet finds its flow and its direction with one dict
lookup; the C walk (``_fastpath.c``) reads the same dict. Idle flows are
forgotten after ``flows.idle_timeout`` by a lazy expiry queue (O(1)
amortised per packet, nothing scanned), and the table never holds more
than ``flows.max`` flows: past it the least recently active of the oldest
few is evicted and counted. Every flow the table lets go of is handed to
``on_evict`` (offline classification reports it; the live daemon forgets
what it kept about it).

Also here: what the C walk needs to count for flows under inspection
(:func:`walk_hooks`), since it walks this table.
"""

from __future__ import annotations

from collections import deque

from .classifiers.openvpn import OpenVPN
from .classifiers.tlsintls import TLSinTLS
from .flow import Flow
from .packet import UDP, reverse_key
from .profiles import FlowSettings, Profile

EVICT_SAMPLE = 8             # when the table is full: evict the least recently active of this many oldest
PACKETS_PER_DATA = 4         # a flow stops being inspected after this many packets per data-packet budget


class FlowTable:
    def __init__(self, settings: FlowSettings, stats: dict, on_evict=None):
        self.flows: dict[bytes, tuple[Flow, int]] = {}
        self.live = 0                                   # flows in the table
        self.expiry: deque[tuple[float, Flow]] = deque()
        self.max_flows = settings.max
        self.idle = settings.idle_timeout
        # UDP flows may be kept shorter (the GFW: 60 s, Zohaib et al. 2025). The
        # expiry queue stays in time order if every entry is due at most
        # `requeue` after it is queued.
        self.udp_idle = min(self.idle, settings.udp_idle_timeout or self.idle)
        self.requeue = self.udp_idle
        self.stats = stats                              # the engine's counters: flows, evicted_idle, evicted_full
        self.on_evict = on_evict

    def add(self, flow: Flow, ts: float, c2s: int, s2c: int) -> None:
        """File a new *flow* under both its keys (evicting one if full)."""
        if self.live >= self.max_flows:
            self.evict_one(ts)
        self.flows[flow.key] = (flow, c2s)
        self.flows[reverse_key(flow.key)] = (flow, s2c)
        self.live += 1
        self.expiry.append((ts + self.requeue, flow))
        self.stats["flows"] += 1

    def forget(self, flow: Flow, why: str = "") -> None:
        """Take *flow* out of the table (both keys, if they are still its)."""
        for key in (flow.key, reverse_key(flow.key)):
            entry = self.flows.get(key)
            if entry is not None and entry[0] is flow:
                del self.flows[key]
        self.live -= 1
        flow.evicted = why or "replaced"
        if self.on_evict is not None:
            self.on_evict(flow)

    def expire(self, now: float) -> None:
        """Forget flows idle for ``flows.idle_timeout``. Each flow sits in the
        queue once, by the time it could next expire; a flow still active
        when its turn comes is put back with its new time."""
        while self.expiry and self.expiry[0][0] <= now:
            _, flow = self.expiry.popleft()
            if flow.evicted:
                continue
            due = flow.last_ts + (self.udp_idle if flow.proto == UDP else self.idle)
            if due <= now:
                self.stats["evicted_idle"] += 1
                self.forget(flow, "idle")
            else:
                self.expiry.append((min(due, now + self.requeue), flow))   # later than now: the loop ends

    def evict_one(self, now: float) -> None:
        """The table is full: evict the least recently active of the
        ``EVICT_SAMPLE`` flows that have waited longest in the expiry queue."""
        self.expire(now)
        if self.live < self.max_flows:
            return
        sample = []
        while self.expiry and len(sample) < EVICT_SAMPLE:
            item = self.expiry.popleft()
            if not item[1].evicted:
                sample.append(item)
        if not sample:
            return
        victim = min(sample, key=lambda item: item[1].last_ts)
        for item in sample:
            if item is not victim:
                self.expiry.appendleft(item)
        self.stats["evicted_full"] += 1
        self.forget(victim[1], "full")

    def all_flows(self, c2s: int) -> list[Flow]:
        """Every flow in the table, once."""
        return [flow for flow, direction in self.flows.values() if direction == c2s]


def walk_hooks(profile: Profile, classifiers) -> tuple[tuple[int, int], tuple | None]:
    """What the C walk needs to count for flows under inspection:

    - plain ACKs of a flow under inspection only count unless the TCP model
      may refuse them; the walk takes them while the flow has fewer data
      packets and packets than the first pair (see ``Engine.spent``);
    - an identified flow is often watched by one classifier alone for the
      rest of its budget (tls-in-tls on TLS, OpenVPN's opcode test on a
      fully encrypted flow). The walk counts for them on in-order segments,
      stopping at any segment that would make the classifier decide. Only
      for the classifiers as written, and a model that reassembles and
      refuses nothing. The second item: a watcher per kind, or None."""
    model = profile.tcp
    refuses = model.check_md5 or model.check_checksum or model.check_ack
    quiet_acks = (0, 0) if refuses else (profile.inspect_packets, PACKETS_PER_DATA * profile.inspect_packets)
    if refuses or not model.reassemble:
        return quiet_acks, None
    watchers = tuple(_watcher(profile, classifiers, kind) for kind in (TLSinTLS, OpenVPN))
    return quiet_acks, watchers if any(watchers) else None


def _watcher(profile: Profile, classifiers, kind) -> tuple | None:
    """What the walk needs of the classifier of *kind* to count for it
    (_fastpath.c, watchers_of): the classifier, its data and packet budgets
    (``Engine.spent`` with only it left) and its constants; None without
    such a classifier, or one the walk cannot follow."""
    clf = next((c for c in classifiers if type(c) is kind), None)
    constants = clf.walk_constants() if clf is not None else ()
    if not constants:
        return None
    budget = max(profile.inspect_packets, clf.budget)
    return (clf, budget, PACKETS_PER_DATA * budget, *constants)
