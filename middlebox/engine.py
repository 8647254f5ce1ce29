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
import ipaddress
import random
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .classifiers import make_classifiers
from .classifiers.base import C2S, DONE, S2C, Detection, StreamView
from .classifiers.openvpn import OpenVPN
from .classifiers.tlsintls import TLSinTLS
from .defrag import Defragmenter
from .flow import Flow, FlowId
from .packet import ACK, FIN, RST, SYN, TCP, TCP_OPT_MD5, UDP, Packet, ip_text, l4_checksum_ok, parse_ethernet, \
    reverse_key
from .profiles import Profile, Rule
from .stream import SEQ_MOD, HALF, Stream

# Identifications that exclude every other protocol of the flow (a valid
# ClientHello is not an OpenVPN reset); FET and Tor are not among them.
EXCLUSIVE = frozenset({"tls", "http", "ssh", "dns", "quic", "dtls", "wireguard", "ipsec", "l2tp", "pptp", "openvpn"})
ANY_CLIENT = b"*"             # residual-block key of a server blocked for every client (after probing)
EVICT_SAMPLE = 8             # when the table is full: evict the least recently active of this many oldest
PACKETS_PER_DATA = 4         # a flow stops being inspected after this many packets per data-packet budget
# The engine keeps every live flow (a few dozen objects each) and allocates
# a few objects per packet. With Python's default threshold the collector
# runs a young collection every 700 net allocations and, as the flow table
# grows, keeps re-scanning it: 14 % of the middlebox's frame handling with
# 20,000 flows in the table, against 1.4 % with this (and a third less time
# per connection over all).
# Only how often it runs changes; cycles are still collected.
YOUNG_COLLECTION_EVERY = 20_000
NAME_KEYS = ("sni", "qname", "host")   # detection details matched against a rule's name list


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


@dataclass
class Verdict:
    flow: FlowId
    action: str                       # allow / log / drop / reset / throttle / forge-dns / probe
    rule: str | None = None
    protocol: str | None = None
    packet_index: int = 0             # 1-based index in the flow of the packet that decided
    ms: float = 0.0                   # since the flow's first packet
    residual: float | None = None
    rate_kbit: int | None = None
    answer: str | None = None
    then: str | None = None
    after_bytes: int | None = None
    resets: dict | None = None
    detection: Detection | None = None
    note: str = ""
    time: float = 0.0
    detections: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.action in ("drop", "reset")

    def as_dict(self) -> dict:
        out = {"time": round(self.time, 6), "flow": self.flow.as_dict(), "protocol": self.protocol,
               "rule": self.rule, "action": self.action, "packet_index": self.packet_index,
               "ms": round(self.ms, 3)}
        for key in ("residual", "rate_kbit", "answer", "then", "after_bytes", "resets"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.detection is not None:
            out["detection"] = self.detection.as_dict()
        if self.note:
            out["note"] = self.note
        if self.notes:
            out["why_not"] = self.notes
        return out


def name_matches(name: str, entry: str) -> bool:
    """A profile's name entry: ``example.org`` is the domain and its
    subdomains; an entry with ``*`` is a glob on the whole name, for censors
    that match loosely. Russia's 2021 Twitter throttling matched ``*t.co*``
    and so also slowed reddit.com and microsoft.com (Xue et al., IMC 2021)."""
    if "*" in entry:
        return fnmatchcase(name, entry)
    return name == entry or name.endswith("." + entry)


class NameSet:
    """A rule's name list, compiled; the same answer as :func:`name_matches`
    on any of its entries. Domains are looked up once per label of the name
    (a set), whatever the list's length: censors' lists run to thousands of
    entries, and the list was walked for every detection."""

    __slots__ = ("domains", "globs")

    def __init__(self, entries):
        self.domains = frozenset(e for e in entries if "*" not in e)
        self.globs = tuple(e for e in entries if "*" in e)

    def matches(self, name: str) -> bool:
        domains = self.domains
        if name in domains:
            return True
        at = name.find(".")
        while at >= 0:
            if name[at + 1:] in domains:
                return True
            at = name.find(".", at + 1)
        return any(fnmatchcase(name, g) for g in self.globs)


class Engine:
    def __init__(self, profile: Profile, seed: int | None = None, on_evict=None):
        self.profile = profile
        self.rng = random.Random(profile.seed if seed is None else seed)
        wanted = {p for r in profile.rules if r.match.protocols for p in r.match.protocols}
        self.classifiers = make_classifiers(profile.params, wanted)
        self.flows: dict[bytes, tuple[Flow, int]] = {}
        self.live = 0                                   # flows in the table
        self.expiry: deque[tuple[float, Flow]] = deque()
        # Residual blocks: (proto, client or ANY_CLIENT, server, port) -> (until, rule, action)
        self.residual: dict[tuple[int, bytes, bytes, int], tuple[float, Rule, str]] = {}
        self.pending: list[Verdict] = []
        self.tcp = profile.tcp
        # A plain ACK of a flow under inspection only counts unless the TCP
        # model may refuse it; offline, the C walk then takes it while the
        # flow has fewer data packets and packets than these (see _spent).
        model = profile.tcp
        refuses = model.check_md5 or model.check_checksum or model.check_ack
        self.accepts_all = not refuses                  # no segment check to run (_accepted)
        self.quiet_acks = (0, 0) if refuses else (profile.inspect_packets, PACKETS_PER_DATA * profile.inspect_packets)
        # An identified flow is often watched by one classifier alone for
        # the rest of its budget: tls-in-tls on TLS, OpenVPN's opcode test on
        # a fully encrypted flow. Offline, the C walk counts for them on
        # in-order segments (two thirds of what reached Python in a real
        # tool capture), stopping at any segment that would make the classifier
        # decide. Only for the classifiers as written, and a model that
        # reassembles and refuses nothing.
        watchers = tuple(self._watcher(kind) for kind in (TLSinTLS, OpenVPN)) \
            if not refuses and model.reassemble else ()
        self.watch = watchers if any(watchers) else None
        self.max_flows = profile.flows.max
        self.idle = profile.flows.idle_timeout
        self.defrag = Defragmenter()
        self.fragments: list[bytes] | None = None       # frames of the datagram the last feed completed
        self.reassembled: Packet | None = None          # ... and that datagram, whole (injection replies to it)
        self.on_evict = on_evict                        # called with each flow the engine lets go of
        self.address_rules = [r for r in profile.rules if not r.needs_detection]
        self.detection_rules = [r for r in profile.rules if r.needs_detection]
        # (id of a rule's match or unless, "sni" | "qname" | "host") -> its names, compiled
        self.name_sets = {(id(m), key): NameSet(getattr(m, key)) for r in profile.rules
                          for m in (r.match, r.unless) if m is not None
                          for key in NAME_KEYS if getattr(m, key) is not None}
        self.stats = {"packets": 0, "non_ip": 0, "flows": 0, "verdicts": 0, "blocked_packets": 0,
                      "fragments_held": 0, "untracked": 0, "ignored_segments": 0, "evicted_idle": 0,
                      "evicted_full": 0}

    def _watcher(self, kind) -> tuple | None:
        """What the C walk needs of this engine's classifier of *kind* to
        count for it (_fastpath.c, watchers_of): the classifier, its data
        and packet budgets (_spent with only it left) and its constants;
        None without such a classifier, or one the walk cannot follow."""
        clf = next((c for c in self.classifiers if type(c) is kind), None)
        constants = clf.walk_constants() if clf is not None else ()
        if not constants:
            return None
        budget = max(self.profile.inspect_packets, clf.budget)
        return (clf, budget, PACKETS_PER_DATA * budget, *constants)

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
        self.stats["packets"] += 1
        self.fragments = None
        return self._packet(pkt, ts)

    def fast(self, buf, s: int, end: int, ts: float) -> Flow | None:
        """The fast path, on ``buf[s:end]`` without copying it: a packet of a
        decided flow that carries no SYN, FIN or RST costs a header read, a
        key and one dict lookup. Anything else returns None (take the slow
        path). Used live and by offline classification alike."""
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
        if self.expiry[0][0] <= ts:          # never empty while a flow is alive
            self._expire(ts)
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

    def drain(self) -> list[Verdict]:
        """Verdicts reached since the last call."""
        out, self.pending = self.pending, []
        return out

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
            self._admit(flow, ts)
        else:
            flow, direction = entry
            self._count(flow, pkt, direction, ts)
        if not flow.done:
            self._inspect(flow, pkt, pkt.payload, direction, ts)
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
                self._forget(flow)
                flow = None
        if flow is None:
            if synack:                                   # capture or connection seen from the SYN/ACK on
                flow = self._new_flow(pkt, ts, pkt.dst, pkt.dport, pkt.src, pkt.sport)
                direction = S2C
            else:
                flow = self._new_flow(pkt, ts, pkt.src, pkt.sport, pkt.dst, pkt.dport)
                direction = C2S
            self._count(flow, pkt, direction, ts)
            self._admit(flow, ts)
            if not flow.done and not (syn or synack) and model.require_syn:
                self.stats["untracked"] += 1
                self._verdict(flow, None, None, ts, action="allow",
                              note="not inspected: the censor keeps state only for connections whose handshake it saw")
        else:
            self._count(flow, pkt, direction, ts)
        if flags & (RST | FIN):
            self._lifecycle(flow, pkt, direction)
        if flow.done:
            return flow
        if not self.accepts_all and not self._accepted(flow, pkt, direction):
            self.stats["ignored_segments"] += 1
            return flow
        payload = pkt.payload
        if syn and direction == C2S:
            if flow.client_isn is None:
                flow.client_isn = pkt.seq
                flow.streams[C2S].start(pkt.seq + 1)
            elif pkt.seq != flow.client_isn and model.second_syn == "resync":
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
        self._inspect(flow, pkt, payload, direction, ts)
        if flow.done or not flags & (RST | FIN):
            return flow
        what = model.rst if flags & RST else model.fin
        if what == "teardown":
            self._verdict(flow, None, None, ts, action="allow",
                          note=f"not inspected further: a {'RST' if flags & RST else 'FIN'} tore down the censor's state")
        elif what == "resync":
            for stream in flow.streams:
                stream.resync = True
        return flow

    def _lifecycle(self, flow: Flow, pkt: Packet, direction: int) -> None:
        """A RST, or a FIN from both ends, closes the connection (for the
        5-tuple's reuse; what the censor's *inspection* does with them is
        the TCP model's business)."""
        if pkt.flags & RST:
            flow.closed = True
        elif pkt.flags & FIN:
            flow.fins |= 1 if direction == C2S else 2
            flow.closed = flow.fins == 3

    def _accepted(self, flow: Flow, pkt: Packet, direction: int) -> bool:
        """Whether the censor's state machine takes this segment at all."""
        model = self.tcp
        if model.check_md5 and TCP_OPT_MD5 in pkt.tcp_option_kinds():
            return False
        if model.check_checksum and not l4_checksum_ok(pkt):
            return False
        if model.check_ack and pkt.flags & ACK:
            other = flow.streams[1 - direction]
            if other.next is not None and 0 < (pkt.ack - other.next) % SEQ_MOD < HALF:
                return False                             # acknowledges bytes never sent
        return True

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
        if self.live >= self.max_flows:
            self._evict_one(ts)
        key = bytes((pkt.proto,)) + client + server + cport.to_bytes(2, "big") + sport.to_bytes(2, "big")
        flow = Flow(key, pkt.proto, client, cport, server, sport, ts)
        self.flows[key] = (flow, C2S)
        self.flows[reverse_key(key)] = (flow, S2C)
        self.live += 1
        self.expiry.append((ts + self.idle, flow))
        self.stats["flows"] += 1
        if pkt.proto == TCP:
            model = self.tcp
            last = model.overlap == "last"
            flow.streams = (Stream(model.max_bytes, model.max_segments, last),
                            Stream(model.max_bytes, model.max_segments, last))
        flow.states = {c: st for c in self.classifiers
                       if pkt.proto in c.transports and (st := c.start(flow)) is not None}
        return flow

    def _admit(self, flow: Flow, ts: float) -> None:
        """Decisions made on a flow's first packet: residual blocks, address rules."""
        # Residual blocking of the server 3-tuple (client IP, server IP, server
        # port), or of the server for every client once probing confirmed it.
        for client in (flow.client, ANY_CLIENT):
            rkey = (flow.proto, client, flow.server, flow.server_port)
            blocked = self.residual.get(rkey)
            if blocked is None:
                continue
            until, rule, action = blocked
            if ts < until:
                self._verdict(flow, rule, None, ts, action=action, residual=None,
                              note=f"residual block from rule '{rule.name}' ({until - ts:.0f}s left)")
                return
            del self.residual[rkey]
        for rule in self.address_rules:
            if self._address_match(rule, flow) and self._draw(rule, flow):
                self._verdict(flow, rule, None, ts)
                return

    def _inspect(self, flow: Flow, pkt: Packet, payload: bytes, direction: int, ts: float) -> None:
        if payload:
            if direction == C2S:
                flow.c2s_data += 1
                if flow.c2s_data == 1:
                    flow.first_c2s_payload = payload
            else:
                flow.s2c_data += 1
                if flow.s2c_data == 1:
                    flow.first_s2c_payload = payload
            view = None
            if flow.streams is not None and self.tcp.reassemble:
                stream = flow.streams[direction]
                seq = pkt.seq + 1 if pkt.flags & SYN else pkt.seq
                if stream.add(seq, payload):
                    view = StreamView(pkt, stream.data, stream.full)
                self._classify(flow, pkt, view, direction, ts, True)
            else:
                self._classify(flow, pkt, None, direction, ts, False)
        if not flow.done and (not flow.states or self._spent(flow)):
            self._decide(flow, None, None, ts)

    def _spent(self, flow: Flow) -> bool:
        budget = self.profile.inspect_packets
        data = flow.c2s_data + flow.s2c_data
        if data < budget and flow.packets < PACKETS_PER_DATA * budget:
            return False
        budget = max([budget] + [c.budget for c in flow.states])     # the ACK filter wants more
        return data >= budget or flow.packets >= PACKETS_PER_DATA * budget

    def _classify(self, flow: Flow, pkt: Packet, view: StreamView | None, direction: int, ts: float,
                  streaming: bool) -> None:
        finished = None                                   # made when a classifier finishes (most packets: none)
        for clf, state in flow.states.items():
            if finished is not None and clf in finished:
                continue
            if streaming and clf.reads_stream:
                if view is None:
                    continue                              # nothing new in order for it
                result = clf.update(state, flow, view, direction)
            else:
                result = clf.update(state, flow, pkt, direction)
            if result is None:
                continue
            if finished is None:
                finished = set()
            finished.add(clf)
            if result is DONE:
                continue
            flow.detections.append(result)
            self._decide(flow, result, clf, ts)
            if flow.done:
                return
            if result.protocol in EXCLUSIVE and result.confidence >= 0.9:
                # A positive identification rules out the other protocols;
                # only classifiers that look inside tunnels go on (this packet too).
                finished.update(other for other in flow.states if not other.sees_inside_tunnels)
        if finished is not None:
            for clf in finished:
                flow.states.pop(clf, None)

    def _decide(self, flow: Flow, detection: Detection | None, clf, ts: float) -> None:
        if detection is not None:
            for rule in self.detection_rules:
                if self._detection_match(rule, flow, detection) and rule.name not in flow.spared:
                    if self._draw(rule, flow):
                        self._verdict(flow, rule, detection, ts)
                        return
            return
        # Nothing more to learn: the flow is allowed.
        self._verdict(flow, None, None, ts, action="allow",
                      note=("spared by probability: " + ", ".join(flow.spared)) if flow.spared else "")

    def _draw(self, rule: Rule, flow: Flow) -> bool:
        if rule.probability >= 1.0 or self.rng.random() < rule.probability:
            return True
        flow.spared.append(rule.name)
        return False

    def _verdict(self, flow: Flow, rule: Rule | None, detection: Detection | None, ts: float,
                 action: str | None = None, residual: float | None = -1.0, note: str = "") -> None:
        best = detection or (max(flow.detections, key=lambda d: d.confidence) if flow.detections else None)
        v = Verdict(flow=flow.id, action=action or rule.action, rule=rule.name if rule else None,
                    protocol=best.protocol if best else None, packet_index=flow.packets,
                    ms=(ts - flow.first_ts) * 1000.0, detection=detection, note=note, time=ts,
                    detections=list(flow.detections), notes=dict(flow.notes))
        if rule is not None and action is None:
            v.residual = rule.residual if residual == -1.0 else residual
            v.rate_kbit, v.answer, v.then = rule.rate_kbit, rule.answer, rule.then
            v.after_bytes, v.resets = rule.after_bytes, rule.resets
            if v.action == "freeze":
                flow.freeze_at = rule.after_bytes
                flow.s2c_bytes = 0
            if rule.residual and v.action in ("drop", "reset"):
                self.residual[(flow.proto, flow.client, flow.server, flow.server_port)] = (ts + rule.residual, rule,
                                                                                            "drop")
        flow.verdict = v
        flow.blocking = v.blocks
        flow.done = True
        flow.states = {}
        flow.streams = None                     # decided: nothing reads the reassembly any more
        self.stats["verdicts"] += 1
        self.pending.append(v)

    # -- matching -------------------------------------------------------
    def _address_match(self, rule: Rule, flow: Flow) -> bool:
        if not self._addresses_fit(rule.match, flow):
            return False
        # Address rules have address-only exceptions (a rule whose `unless` needs a
        # detection is a detection rule): judge them on the addresses too.
        return rule.unless is None or not self._addresses_fit(rule.unless, flow)

    def _addresses_fit(self, m, flow: Flow) -> bool:
        if m.ip_version is not None and m.ip_version != (6 if len(flow.server) == 16 else 4):
            return False
        if m.sport_gt_dport is not None and m.sport_gt_dport != (flow.client_port > flow.server_port):
            return False
        if m.direction is not None:
            client_in, server_in = self._inside(flow.client), self._inside(flow.server)
            crossing = (client_in and not server_in) if m.direction == "outbound" else (server_in and not client_in)
            if not crossing:
                return False
        if m.transport and m.transport != ("tcp" if flow.proto == TCP else "udp" if flow.proto == UDP else None):
            return False
        if m.server_ports is not None and flow.server_port not in m.server_ports:
            return False
        if m.server_ips is not None:
            server = ipaddress.ip_address(flow.server)
            if not any(server in net for net in m.server_ips):
                return False
        if m.client_ips is not None:
            client = ipaddress.ip_address(flow.client)
            if not any(client in net for net in m.client_ips):
                return False
        return True

    def _inside(self, address: bytes) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.profile.inside)

    def _detection_match(self, rule: Rule, flow: Flow, det: Detection) -> bool:
        if not self._detection_fits(rule.match, flow, det):
            return False
        return rule.unless is None or not self._detection_fits(rule.unless, flow, det)

    def _detection_fits(self, m, flow: Flow, det: Detection) -> bool:
        if m.protocols is not None and det.protocol not in m.protocols:
            return False
        if m.signals is not None and det.signal not in m.signals:
            return False
        if det.confidence < m.min_confidence:
            return False
        for key in NAME_KEYS:
            if getattr(m, key) is not None:
                name = (det.detail.get(key) or "").lower().rstrip(".")
                if not name or not self.name_sets[(id(m), key)].matches(name):
                    return False
        for key in ("ja3", "ja4"):
            wanted = getattr(m, key)
            if wanted is not None and det.detail.get(key) not in wanted:
                return False
        return self._addresses_fit(m, flow)

    # -- housekeeping ---------------------------------------------------
    def _forget(self, flow: Flow, why: str = "") -> None:
        """Take *flow* out of the table (both keys, if they are still its)."""
        for key in (flow.key, reverse_key(flow.key)):
            entry = self.flows.get(key)
            if entry is not None and entry[0] is flow:
                del self.flows[key]
        self.live -= 1
        flow.evicted = why or "replaced"
        if self.on_evict is not None:
            self.on_evict(flow)

    def _expire(self, now: float) -> None:
        """Forget flows idle for ``flows.idle_timeout``. Each flow sits in the
        queue once, by the time it could next expire; a flow still active
        when its turn comes is put back with its new time, so the cost is
        O(1) amortised per packet and nothing is scanned."""
        while self.expiry and self.expiry[0][0] <= now:
            _, flow = self.expiry.popleft()
            if flow.evicted:
                continue
            due = flow.last_ts + self.idle
            if due <= now:
                self.stats["evicted_idle"] += 1
                self._forget(flow, "idle")
            else:
                self.expiry.append((due, flow))
        if len(self.residual) > 1024:            # expired blocks are also dropped when looked up
            for rkey in [k for k, (until, _r, _a) in self.residual.items() if until <= now]:
                del self.residual[rkey]

    def _evict_one(self, now: float) -> None:
        """The table is full: evict the least recently active of the
        ``EVICT_SAMPLE`` flows that have waited longest in the expiry queue."""
        self._expire(now)
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
        self._forget(victim[1], "full")

    def all_flows(self) -> list[Flow]:
        """Every flow in the table, once."""
        return [flow for flow, direction in self.flows.values() if direction == C2S]

    def block_server(self, proto: int, server: bytes, port: int, seconds: float | None, rule_name: str,
                     action: str, now: float) -> None:
        """Block *server*:*port* for every client (a server the prober
        confirmed): new flows to it get *action* (``drop``, or ``reset`` for
        a censor that answers them with RSTs) for *seconds* (None: the run)."""
        from .profiles import Match
        until = float("inf") if seconds is None else now + seconds
        self.residual[(proto, ANY_CLIENT, server, port)] = (until, Rule(rule_name, Match(), action), action)

    def active_blocks(self, now: float) -> list[dict]:
        return [{"transport": "tcp" if proto == TCP else "udp", "client": "*" if c == ANY_CLIENT else ip_text(c),
                 "server": ip_text(s), "server_port": port, "rule": rule.name, "action": action,
                 "seconds_left": round(until - now, 1)}
                for (proto, c, s, port), (until, rule, action) in self.residual.items() if until > now]
