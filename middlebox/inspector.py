"""Inspection: a flow's packets through the classifiers, the profile's
rules over what they report, and the verdict.

The engine (:mod:`.engine`) finds each packet's flow; this decides the
flow. Decisions on a flow's first packet come from residual blocks
(:mod:`.residual`) and address rules; after that each data packet (or, on
TCP where the profile reassembles, each new in-order stretch of the
direction's stream) goes to the flow's classifiers until one detection
matches a rule (:mod:`.ruleset`), every classifier gives up, or the flow's
inspection budget is spent. Then the flow has one verdict, and the engine
takes its packets on the fast path.
"""

from __future__ import annotations

from tunnelwall.base.verdict import Verdict

from .classifiers import make_classifiers
from .classifiers.base import C2S, DONE, Detection, StreamView
from .flow import Flow
from .flowtable import PACKETS_PER_DATA
from .packet import SYN, Packet
from .profiles import Profile, Rule
from .residual import ResidualTable
from .ruleset import RuleSet

# Identifications that exclude every other protocol of the flow (a valid
# ClientHello is not an OpenVPN reset); FET and Tor are not among them.
EXCLUSIVE = frozenset({"tls", "http", "ssh", "dns", "quic", "dtls", "wireguard", "ipsec", "l2tp", "pptp", "openvpn"})

def rule_verdict(flow: Flow, rule: Rule | None, detection: Detection | None, ts: float, action: str | None = None,
                 residual: float | None = -1.0, note: str = "") -> Verdict:
    """The verdict on *flow* now: *rule*'s (with its parameters), or
    *action* with no rule's parameters; the protocol is the decisive
    detection's, else the flow's most confident one."""
    best = detection or (max(flow.detections, key=lambda d: d.confidence) if flow.detections else None)
    v = Verdict(flow=flow.id, action=action or rule.action, rule=rule.name if rule else None,
                protocol=best.protocol if best else None, packet_index=flow.packets,
                ms=(ts - flow.first_ts) * 1000.0, detection=detection, note=note, time=ts,
                detections=list(flow.detections), notes=dict(flow.notes))
    if rule is not None and action is None:
        v.residual = rule.residual if residual == -1.0 else residual
        v.rate_kbit, v.answer, v.then = rule.rate_kbit, rule.answer, rule.then
        v.after_bytes, v.resets = rule.after_bytes, rule.resets
    return v


class Inspector:
    def __init__(self, profile: Profile, seed: int | None, stats: dict):
        self.profile = profile
        self.rules = RuleSet(profile, seed)
        self.classifiers = make_classifiers(profile.params, self.rules.wanted_protocols)
        self.residual = ResidualTable()
        self.stats = stats                              # the engine's counters: verdicts
        self.pending: list[Verdict] = []                # verdicts not drained yet (one list for the run)
        self.reassemble = profile.tcp.reassemble

    def start(self, flow: Flow) -> None:
        """A new flow: each classifier that applies keeps its state on it."""
        flow.states = {c: st for c in self.classifiers
                       if flow.proto in c.transports and (st := c.start(flow)) is not None}

    def admit(self, flow: Flow, ts: float) -> None:
        """Decisions made on a flow's first packet: residual blocks, address rules."""
        blocked = self.residual.holding(flow.proto, flow.client, flow.server, flow.server_port, ts)
        if blocked is not None:
            until, rule, action = blocked
            self.verdict(flow, rule, None, ts, action=action, residual=None,
                          note=f"residual block from rule '{rule.name}' ({until - ts:.0f}s left)")
            return
        rule = self.rules.first_address_rule(flow)
        if rule is not None:
            self.verdict(flow, rule, None, ts)

    def inspect(self, flow: Flow, pkt: Packet, payload: bytes, direction: int, ts: float) -> None:
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
            if flow.streams is not None and self.reassemble:
                stream = flow.streams[direction]
                seq = pkt.seq + 1 if pkt.flags & SYN else pkt.seq
                if stream.add(seq, payload):
                    view = StreamView(pkt, stream.data, stream.full)
                self._classify(flow, pkt, view, direction, ts, True)
            else:
                self._classify(flow, pkt, None, direction, ts, False)
        if not flow.done and (not flow.states or self.spent(flow)):
            self.verdict(flow, None, None, ts, action="allow",        # nothing more to learn
                          note=("spared by probability: " + ", ".join(flow.spared)) if flow.spared else "")

    def spent(self, flow: Flow) -> bool:
        """Whether *flow*'s inspection budget is used up."""
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
            rule = self.rules.first_detection_rule(flow, result)
            if rule is not None:
                self.verdict(flow, rule, result, ts)
                return
            if result.protocol in EXCLUSIVE and result.confidence >= 0.9:
                # A positive identification rules out the other protocols;
                # only classifiers that look inside tunnels go on (this packet too).
                finished.update(other for other in flow.states if not other.sees_inside_tunnels)
        if finished is not None:
            for clf in finished:
                flow.states.pop(clf, None)

    def verdict(self, flow: Flow, rule: Rule | None, detection: Detection | None, ts: float,
                 action: str | None = None, residual: float | None = -1.0, note: str = "") -> None:
        v = rule_verdict(flow, rule, detection, ts, action, residual, note)
        if rule is not None and action is None:
            if v.action == "freeze":
                flow.freeze_at = rule.after_bytes
                flow.s2c_bytes = 0
            if rule.residual and v.action in ("drop", "reset"):
                self.residual.block_three_tuple(flow.proto, flow.client, flow.server, flow.server_port,
                                                ts + rule.residual, rule)
        flow.verdict = v
        flow.blocking = v.blocks
        flow.done = True
        flow.states = {}
        flow.streams = None                     # decided: nothing reads the reassembly any more
        self.stats["verdicts"] += 1
        self.pending.append(v)
