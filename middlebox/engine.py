"""The classification engine: packets in, verdicts out.

Per packet, in this order:

1. IP fragments are put back together (:mod:`middlebox.defrag`); nothing
   is classified from a fragment alone.
2. TCP goes through the censor's TCP model (:mod:`middlebox.stream`): the
   client is the SYN's sender; a RST/FIN/second SYN does what the profile's
   ``tcp:`` says; the first bytes of each direction are reassembled, and
   stream-reading classifiers (TLS, HTTP, SSH) see them in order.
3. Classifiers are fed until one detection matches a rule, every
   classifier gives up, or the flow's inspection budget is spent; then the
   flow has one verdict and is on the fast path: one dict lookup per packet.

Flows end: a RST, or a FIN from both ends, closes a TCP flow, and a SYN with
a new sequence number on a closed or decided 5-tuple starts a new flow with
a verdict of its own. Idle flows are forgotten after ``flows.idle_timeout``
by a lazy expiry queue (O(1) amortised per packet), and the table never
holds more than ``flows.max`` flows: past it the least recently active of
the oldest few is evicted and counted.

Residual blocks (GFW-style "the server 3-tuple stays blocked for N seconds")
are kept here too, so offline classification of a capture sees them exactly
like the live censor. Time is whatever the caller says (capture timestamps
offline, the clock live), and every probability is drawn from a seeded RNG:
the same capture and seed give the same verdicts.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

from tunnelwall.base.verdict import Verdict

from .classifiers.base import C2S, S2C
from .defrag import Defragmenter
from .flow import Flow
from .flowtable import FlowTable, walk_hooks
from .inspector import Inspector
from .packet import ACK, FIN, RST, SYN, TCP, Packet, parse_ethernet
from .profiles import Profile
from .stream import SEQ_MOD, Stream, segment_accepted, stray_reset

# The engine keeps every live flow (a few dozen objects each) and allocates
# a few objects per packet. With Python's default threshold the collector
# runs a young collection every 700 net allocations and, as the flow table
# grows, keeps re-scanning it: 14 % of the middlebox's frame handling with
# 20,000 flows in the table, against 1.4 % with this (and a third less time
# per connection over all).
# Only how often it runs changes; cycles are still collected.
YOUNG_COLLECTION_EVERY = 20_000


def collect_less() -> tuple[int, int, int]:
    """Raise the collector's young threshold to YOUNG_COLLECTION_EVERY (the
    live middlebox, for its whole life); returns the thresholds before."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_COLLECTION_EVERY), *before[1:])
    return before


@contextmanager
def fewer_collections():
    """:func:`collect_less` while the engine runs (offline
    classification), the thresholds restored after."""
    before = collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*before)


class Engine:
    def __init__(self, profile: Profile, seed: int | None = None, on_evict=None):
        self.profile = profile
        self.stats = {"packets": 0, "non_ip": 0, "flows": 0, "verdicts": 0, "blocked_packets": 0,
                      "fragments_held": 0, "untracked": 0, "ignored_segments": 0, "evicted_idle": 0,
                      "evicted_full": 0, "unparsed": 0}
        self.inspector = Inspector(profile, seed, self.stats)
        self.residual = self.inspector.residual
        self.pending = self.inspector.pending           # one list for the run: offline clears it in place
        self.table = FlowTable(profile.flows, self.stats, on_evict)
        self.flows, self.expiry = self.table.flows, self.table.expiry      # read per packet, and by the C walk
        self.tcp = model = profile.tcp
        self.accepts_all = not (model.check_md5 or model.check_checksum or model.check_ack)   # no segment checks
        self.quiet_acks, self.watch = walk_hooks(profile, self.inspector.classifiers)
        self.defrag = Defragmenter()
        self.fragments: list[bytes] | None = None       # frames of the datagram the last feed completed
        self.reassembled: Packet | None = None          # ... and that datagram, whole (injection replies to it)

    @property
    def live(self) -> int:
        return self.table.live

    def all_flows(self) -> list[Flow]:
        return self.table.all_flows(C2S)

    def drain(self) -> list[Verdict]:
        """Verdicts reached since the last call."""
        if not self.pending:
            return []
        out = self.pending[:]
        self.pending.clear()
        return out

    # -- input ----------------------------------------------------------
    def feed(self, frame: bytes, ts: float) -> Flow | None:
        """Feed one Ethernet frame. Returns its flow; None if it is not IP,
        or a fragment whose datagram is not complete yet (``fragments`` is
        then a list: empty while held, the datagram's frames once complete)."""
        self.stats["packets"] += 1
        flow = self.fast(frame, 0, len(frame), ts)
        if flow is not None:
            self.fragments = None
            return flow
        return self.feed_slow(frame, ts)

    def feed_slow(self, frame: bytes, ts: float) -> Flow | None:
        """Feed a frame that :meth:`fast` did not take (already counted)."""
        self.fragments = None
        pkt = parse_ethernet(frame)
        if pkt is None:
            self.stats["non_ip"] += 1
            return None
        return self._packet(pkt, ts)

    def feed_packet(self, pkt: Packet, ts: float) -> Flow | None:
        """Feed a packet already parsed (or built: the fidelity vectors)."""
        self.stats["packets"] += 1
        self.fragments = None
        return self._packet(pkt, ts)

    def fast(self, buf, s: int, end: int, ts: float) -> Flow | None:
        """The fast path, on ``buf[s:end]`` without copying it: a packet of a
        decided flow that carries no SYN, FIN or RST costs a header read, a
        key and one dict lookup. Anything else returns None (take the slow
        path). Used live and by offline classification alike."""
        if self.expiry and self.expiry[0][0] <= ts:
            self._expire(ts)                 # first: a flow idle past its time meets this packet as a new one
        ethertype = buf[s + 12:s + 14]
        if ethertype == b"\x08\x00":
            if end - s < 38 or buf[s + 14] != 0x45 or buf[s + 20] & 0x3F or buf[s + 21]:
                return None                              # options or a fragment
            entry = self.flows.get(buf[s + 23:s + 24] + buf[s + 26:s + 38])
            if entry is None or not entry[0].done:
                return None
            size = (buf[s + 16] << 8 | buf[s + 17]) - 20
            proto, l4 = buf[s + 23], s + 34
        elif ethertype == b"\x86\xdd":
            if end - s < 58 or buf[s + 20] not in (6, 17):
                return None                              # extension headers: slow path
            entry = self.flows.get(buf[s + 20:s + 21] + buf[s + 22:s + 58])
            if entry is None or not entry[0].done:
                return None
            size = buf[s + 18] << 8 | buf[s + 19]
            proto, l4 = buf[s + 20], s + 54
        else:
            return None
        if proto == TCP:
            if end - l4 < 14 or buf[l4 + 13] & (SYN | FIN | RST):
                return None                              # the flow's lifecycle is decided on the slow path
            size -= (buf[l4 + 12] >> 4) * 4
        else:
            size -= 8
        flow, direction = entry
        flow.packets += 1
        flow.bytes += size if size > 0 else 0
        flow.last_ts = ts
        if direction == C2S:
            flow.c2s_packets += 1
        else:
            flow.s2c_packets += 1
            if flow.freeze_at and size > 0:
                self._freeze_count(flow, size, ts)
        if flow.blocking:
            self.stats["blocked_packets"] += 1
        return flow

    def _freeze_count(self, flow: Flow, size: int, ts: float) -> None:
        """A frozen flow (Russia's TSPU since 2025: TLS to datacenter ranges
        stops after about 16 KB from the server, no RST): count the server's
        bytes; past the threshold the flow is dropped, with a verdict of its own."""
        flow.s2c_bytes += size
        if flow.s2c_bytes < flow.freeze_at:
            return
        first = flow.verdict
        flow.freeze_at = 0
        v = Verdict(flow=flow.id, action="drop", rule=first.rule, protocol=first.protocol, packet_index=flow.packets,
                    ms=(ts - flow.first_ts) * 1000.0, time=ts,
                    note=f"frozen: {flow.s2c_bytes} bytes from the server, threshold reached")
        flow.verdict, flow.blocking = v, True
        self.stats["verdicts"] += 1
        self.pending.append(v)

    # -- per packet -----------------------------------------------------
    def _packet(self, pkt: Packet, ts: float) -> Flow | None:
        if pkt.frag is not None:
            whole, frames = self.defrag.add(pkt, ts)
            self.fragments, self.reassembled = frames, whole
            if whole is None:
                self.stats["fragments_held"] += 1
                return None
            pkt = whole
        if self.expiry and self.expiry[0][0] <= ts:
            self._expire(ts)
        if pkt.proto == TCP:
            return self._tcp(pkt, ts)
        entry = self.flows.get(pkt.key)
        if entry is None:
            flow, direction = self._new_flow(pkt, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport), C2S
            self._count(flow, pkt, direction, ts)
            self.inspector.admit(flow, ts)
        else:
            flow, direction = entry
            self._count(flow, pkt, direction, ts)
        if not flow.done:
            self.inspector.inspect(flow, pkt, pkt.payload, direction, ts)
        return flow

    def _tcp(self, pkt: Packet, ts: float) -> Flow:
        flags, model = pkt.flags, self.tcp
        syn = flags & (SYN | ACK | RST) == SYN
        synack = flags & (SYN | ACK | RST) == SYN | ACK
        entry = self.flows.get(pkt.key)
        flow = None
        if entry is not None:
            flow, direction = entry
            if syn and pkt.seq != flow.client_isn and (flow.closed or flow.done or direction == S2C):
                # A new connection on this 5-tuple, or the real client's SYN
                # after a SYN/ACK it sent first ("TCB turnaround"): start afresh.
                self.table.forget(flow)
                flow = None
        if flow is None:
            if synack:                                   # capture or connection seen from the SYN/ACK on
                flow, direction = self._new_flow(pkt, ts, pkt.dst, pkt.dport, pkt.src, pkt.sport), S2C
            else:
                flow, direction = self._new_flow(pkt, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport), C2S
            self._count(flow, pkt, direction, ts)
            self.inspector.admit(flow, ts)
            if not flow.done and not (syn or synack) and model.require_syn:
                self.stats["untracked"] += 1
                self.inspector.verdict(flow, None, None, ts, action="allow",
                              note="not inspected: the censor keeps state only for connections whose handshake it saw")
        else:
            self._count(flow, pkt, direction, ts)
        if flags & RST and stray_reset(flow, pkt, direction):
            self.stats["ignored_segments"] += 1          # not acceptable to the client (RFC 793)
            return flow
        if flags & RST:                                  # closes the connection (for the 5-tuple's reuse)
            flow.closed = True
        elif flags & FIN:
            flow.fins |= 1 if direction == C2S else 2
            flow.closed = flow.fins == 3
        if flow.done:
            return flow
        if not self.accepts_all and not segment_accepted(model, flow.streams, pkt, direction):
            self.stats["ignored_segments"] += 1
            return flow
        payload = pkt.payload
        if syn and direction == C2S:
            if flow.client_isn is None or (pkt.seq != flow.client_isn and model.second_syn == "resync"):
                flow.client_isn = pkt.seq
                flow.streams[C2S].start(pkt.seq + 1)
            if model.syn_payload == "ignore":
                payload = b""
        elif synack and direction == S2C:
            flow.streams[S2C].start(pkt.seq + 1)
            if flow.client_isn is not None and pkt.ack != (flow.client_isn + 1) % SEQ_MOD:
                flow.streams[C2S].resync = True          # Wang et al. 2017, section 5.1
            if model.syn_payload == "ignore":
                payload = b""
        self.inspector.inspect(flow, pkt, payload, direction, ts)
        if flow.done or not flags & (RST | FIN):
            return flow
        what = model.rst if flags & RST else model.fin
        if what == "teardown":
            self.inspector.verdict(flow, None, None, ts, action="allow",
                          note=f"not inspected further: a {'RST' if flags & RST else 'FIN'} tore down the censor's state")
        elif what == "resync":
            for stream in flow.streams:
                stream.resync = True
        return flow

    def _count(self, flow: Flow, pkt: Packet, direction: int, ts: float) -> None:
        flow.packets += 1
        flow.last_ts = ts
        flow.bytes += len(pkt.payload)
        if direction == C2S:
            flow.c2s_packets += 1
        else:
            flow.s2c_packets += 1
            if flow.freeze_at and pkt.payload:
                self._freeze_count(flow, len(pkt.payload), ts)
        if flow.done and flow.blocking:
            self.stats["blocked_packets"] += 1

    def _new_flow(self, pkt: Packet, ts: float, client: bytes, cport: int, server: bytes, sport: int) -> Flow:
        key = bytes((pkt.proto,)) + client + server + cport.to_bytes(2, "big") + sport.to_bytes(2, "big")
        flow = Flow(key, pkt.proto, client, cport, server, sport, ts)
        self.table.add(flow, ts, C2S, S2C)
        if pkt.proto == TCP:
            model = self.tcp
            last = model.overlap == "last"
            flow.streams = (Stream(model.max_bytes, model.max_segments, last),
                            Stream(model.max_bytes, model.max_segments, last))
        self.inspector.start(flow)
        return flow

    def _expire(self, now: float) -> None:
        self.table.expire(now)
        self.residual.sweep(now)
