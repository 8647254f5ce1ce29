"""The classification engine: packets in, verdicts out.

For each flow it feeds the first packets (at most ``profile.inspect_packets``)
to every classifier that applies, matches detections against the profile's
rules, and reaches one verdict per flow. After that the flow is on the fast
path: one dict lookup per packet. Residual blocks (GFW-style "the server
3-tuple stays blocked for N seconds") are kept here too, so offline
classification of a capture sees them exactly like the live censor.

Time is whatever the caller says (capture timestamps offline, the clock
live), and every probability is drawn from a seeded RNG: the same capture
and seed give the same verdicts.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .classifiers import make_classifiers
from .classifiers.base import C2S, DONE, S2C, Detection
from .flow import Flow, FlowId, orient
from .packet import TCP, UDP, Packet, ip_text, parse_ethernet, reverse_key
from .profiles import Profile, Rule

# Identifications that exclude every other protocol of the flow (a valid
# ClientHello is not an OpenVPN reset); FET and Tor are not among them.
EXCLUSIVE = frozenset({"tls", "http", "ssh", "dns", "quic", "wireguard", "ipsec", "l2tp", "pptp", "openvpn"})
MAX_FLOWS = 500_000          # evict idle flows beyond this many
IDLE_TIMEOUT = 300.0         # seconds without packets before a flow may be evicted


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
        for key in ("residual", "rate_kbit", "answer", "then"):
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

class Engine:
    def __init__(self, profile: Profile, seed: int | None = None):
        self.profile = profile
        self.rng = random.Random(profile.seed if seed is None else seed)
        wanted = {p for r in profile.rules if r.match.protocols for p in r.match.protocols}
        self.classifiers = make_classifiers(profile.params, wanted)
        self.flows: dict[bytes, tuple[Flow, int]] = {}
        self.residual: dict[tuple[int, bytes, bytes, int], tuple[float, Rule]] = {}
        self.pending: list[Verdict] = []
        self.max_packets = profile.inspect_packets
        self.address_rules = [r for r in profile.rules if not r.match.needs_detection]
        self.detection_rules = [r for r in profile.rules if r.match.needs_detection]
        self.stats = {"packets": 0, "non_ip": 0, "flows": 0, "verdicts": 0, "blocked_packets": 0}

    # -- input ----------------------------------------------------------
    def feed(self, frame: bytes, ts: float) -> Flow | None:
        """Feed one Ethernet frame. Returns its flow (None if not IPv4)."""
        self.stats["packets"] += 1
        # Fast path: an IPv4 TCP/UDP frame of a flow we already decided.
        if len(frame) >= 38 and frame[12:14] == b"\x08\x00" and frame[14] == 0x45:
            entry = self.flows.get(frame[23:24] + frame[26:38])
            if entry is not None and entry[0].done:
                flow = entry[0]
                flow.packets += 1
                flow.last_ts = ts
                if flow.blocking:
                    self.stats["blocked_packets"] += 1
                return flow
        pkt = parse_ethernet(frame)
        if pkt is None:
            self.stats["non_ip"] += 1
            return None
        return self._packet(pkt, ts)

    def feed_packet(self, pkt: Packet, ts: float) -> Flow:
        self.stats["packets"] += 1
        return self._packet(pkt, ts)

    def drain(self) -> list[Verdict]:
        """Verdicts reached since the last call."""
        out, self.pending = self.pending, []
        return out

    # -- per packet -----------------------------------------------------
    def _packet(self, pkt: Packet, ts: float) -> Flow:
        entry = self.flows.get(pkt.key)
        new = entry is None
        if new:
            flow = self._new_flow(pkt, ts)
            direction = C2S if pkt.src == flow.client and pkt.sport == flow.client_port else S2C
        else:
            flow, direction = entry
        flow.packets += 1
        flow.last_ts = ts
        flow.bytes += len(pkt.payload)
        if direction == C2S:
            flow.c2s_packets += 1
        else:
            flow.s2c_packets += 1
        if new:
            self._admit(flow, ts)
        if flow.done:
            if flow.blocking:
                self.stats["blocked_packets"] += 1
            return flow
        if pkt.payload:
            if direction == C2S:
                flow.c2s_data += 1
                if flow.c2s_data == 1:
                    flow.first_c2s_payload = pkt.payload
            else:
                flow.s2c_data += 1
                if flow.s2c_data == 1:
                    flow.first_s2c_payload = pkt.payload
        flow.history.append((direction, len(pkt.payload)))
        # A packet without payload (TCP handshake, pure ACK) tells no classifier anything.
        if pkt.payload:
            self._classify(flow, pkt, direction, ts)
        if not flow.done and (not flow.states or flow.packets >= self.max_packets):
            self._decide(flow, None, None, ts)
        return flow

    def _new_flow(self, pkt: Packet, ts: float) -> Flow:
        if len(self.flows) >= 2 * MAX_FLOWS:
            self._evict(ts)
        client, cport, server, sport = orient(pkt)
        key = bytes((pkt.proto,)) + client + server + cport.to_bytes(2, "big") + sport.to_bytes(2, "big")
        flow = Flow(key, pkt.proto, client, cport, server, sport, ts)
        self.flows[key] = (flow, C2S)
        self.flows[reverse_key(key)] = (flow, S2C)
        self.stats["flows"] += 1
        flow.states = {c: st for c in self.classifiers
                       if pkt.proto in c.transports and (st := c.start(flow)) is not None}
        return flow

    def _admit(self, flow: Flow, ts: float) -> None:
        """Decisions made on a flow's first packet: residual blocks, address rules."""
        client, server, sport = flow.client, flow.server, flow.server_port
        # Residual blocking of the server 3-tuple (client IP, server IP, server port).
        rkey = (flow.proto, client, server, sport)
        blocked = self.residual.get(rkey)
        if blocked is not None:
            until, rule = blocked
            if ts < until:
                self._verdict(flow, rule, None, ts, action="drop", residual=None,
                              note=f"residual block from rule '{rule.name}' ({until - ts:.0f}s left)")
                return
            del self.residual[rkey]
        for rule in self.address_rules:
            if self._address_match(rule, flow) and self._draw(rule, flow):
                self._verdict(flow, rule, None, ts)
                return

    def _classify(self, flow: Flow, pkt: Packet, direction: int, ts: float) -> None:
        finished = []
        for clf, state in flow.states.items():
            result = clf.update(state, flow, pkt, direction)
            if result is None:
                continue
            finished.append(clf)
            if result is DONE:
                continue
            flow.detections.append(result)
            self._decide(flow, result, clf, ts)
            if flow.done:
                return
            if result.protocol in EXCLUSIVE and result.confidence >= 0.9:
                # A positive identification rules out the other protocols;
                # only classifiers that look inside tunnels keep going.
                for other in flow.states:
                    if not other.sees_inside_tunnels:
                        finished.append(other)
                break
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
            if rule.residual and v.action in ("drop", "reset"):
                self.residual[(flow.proto, flow.client, flow.server, flow.server_port)] = (ts + rule.residual, rule)
        flow.verdict = v
        flow.blocking = v.blocks
        flow.done = True
        flow.states = {}
        self.stats["verdicts"] += 1
        self.pending.append(v)

    # -- matching -------------------------------------------------------
    @staticmethod
    def _address_match(rule: Rule, flow: Flow) -> bool:
        m = rule.match
        if m.transport and m.transport != ("tcp" if flow.proto == TCP else "udp" if flow.proto == UDP else None):
            return False
        if m.server_ports is not None and flow.server_port not in m.server_ports:
            return False
        if m.server_ips is not None:
            server = ipaddress.IPv4Address(flow.server)
            if not any(server in net for net in m.server_ips):
                return False
        if m.client_ips is not None:
            client = ipaddress.IPv4Address(flow.client)
            if not any(client in net for net in m.client_ips):
                return False
        return True

    def _detection_match(self, rule: Rule, flow: Flow, det: Detection) -> bool:
        m = rule.match
        if m.protocols is not None and det.protocol not in m.protocols:
            return False
        if m.signals is not None and det.signal not in m.signals:
            return False
        if det.confidence < m.min_confidence:
            return False
        for key in ("sni", "qname", "host"):
            wanted = getattr(m, key)
            if wanted is not None:
                name = (det.detail.get(key) or "").lower().rstrip(".")
                if not name or not any(name_matches(name, d) for d in wanted):
                    return False
        return self._address_match(rule, flow)

    # -- housekeeping ---------------------------------------------------
    def _evict(self, now: float) -> None:
        for key, (flow, _d) in list(self.flows.items()):
            if now - flow.last_ts > IDLE_TIMEOUT:
                del self.flows[key]
        for rkey, (until, _rule) in list(self.residual.items()):
            if until <= now:
                del self.residual[rkey]

    def active_blocks(self, now: float) -> list[dict]:
        return [{"transport": "tcp" if proto == TCP else "udp", "client": ip_text(c), "server": ip_text(s),
                 "server_port": port, "rule": rule.name, "seconds_left": round(until - now, 1)}
                for (proto, c, s, port), (until, rule) in self.residual.items() if until > now]
