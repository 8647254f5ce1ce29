"""What the middlebox does to packets beyond passing them on or not.

* RSTs: a flow reset gets RST+ACKs to both ends, shaped by its rule, and
  again (a few times at most) for each later packet of it that reaches the
  censor, with that packet's sequence numbers, as on-path injectors do;
* forged DNS answers;
* policing: a throttled flow's frames that still reach the middlebox (its
  meter's rule is not on the switch yet) pass only within the rule's rate;
* the conntrack-offload tag: frames of a flow allowed go back with the
  run's VLAN tag, and the switch's connection tracker lets the rest by; a
  frame that *arrives* with that tag was forged by a host and never goes on.
"""

from __future__ import annotations

import collections

from tunnelwall.base.policer import Bucket

from . import inject
from .packet import ip_start

RESETS_PER_FLOW = 8              # RST rounds per reset flow after the first (one per offending packet)
DEFERRED = frozenset({"allow", "log"})   # verdicts with no rule now: the switch's tracker takes the flow
                                         # (flows.offload: conntrack), or a rule after offload_after packets
REMEMBERED = 10_000              # flows whose RST rounds and buckets are kept (oldest forgotten first)


def ruleless(action: str, flow) -> bool:
    """A verdict whose flow gets no rule at once: allowed or logged, on a
    flow with ports (the only kind the switch can hold)."""
    return action in DEFERRED and bool(flow.client_port and flow.server_port)


def must_retract(flow, announced: list | None) -> bool:
    """Whether *flow*, replaced by a new connection on its 5-tuple, may have
    an allow rule on the switch (rules offload): decided, not blocking, its
    rule sent (at the verdict or when its deferred offload came due). That
    rule would carry the new connection past the censor (issue 33)."""
    return (flow.evicted == "replaced" and flow.done and announced is not None and not announced[1]
            and ruleless(flow.verdict.action, flow))


def held_syn(frame: bytes) -> bool:
    """A TCP SYN without ACK (rules offload sends those to the middlebox
    only, in both placements)."""
    from .packet import ACK, RST, SYN, TCP, parse_ethernet
    pkt = parse_ethernet(frame)
    return pkt is not None and pkt.proto == TCP and pkt.flags & (SYN | ACK | RST) == SYN


class Enforcer:
    def __init__(self, port, bypass_vlan: int | None):
        self.port = port
        self.bypass_vlan = bypass_vlan
        self.bypass_tag = b"\x81\x00" + bypass_vlan.to_bytes(2, "big") if bypass_vlan else b""
        self.resets_sent: collections.OrderedDict = collections.OrderedDict()   # flow key -> RST rounds
        # Throttled flows' frames until the switch's meter takes them over:
        # (flow key, from the client) -> its bucket.
        self.buckets: collections.OrderedDict = collections.OrderedDict()

    # -- the offload tag --------------------------------------------------
    def bypassed(self, flow) -> bool:
        """Whether the switch's tracker should let the rest of this flow by
        (conntrack offload)."""
        # Not once it closed (a RST, or FINs both ways): there is nothing left
        # to offload, and a tagged RST would commit a marked entry that a new
        # connection on the 5-tuple could find (issue 33).
        return self.bypass_vlan is not None and flow.done and not flow.closed and ruleless(flow.verdict.action, flow)

    def carries_tag(self, frame: bytes) -> bool:
        return frame[12:14] == b"\x81\x00" and int.from_bytes(frame[14:16], "big") & 0xFFF == self.bypass_vlan

    def tagged(self, frame: bytes) -> bytes:
        self.port.load["tagged"] += 1
        return frame[:12] + self.bypass_tag + frame[12:]

    # -- policing ----------------------------------------------------------
    def within_rate(self, flow, frame: bytes, now: float) -> bool:
        """A throttled flow's frame passes only within the rule's rate, per
        direction, as the meter would let it (base.policer)."""
        at, _ethertype = ip_start(frame)                      # a VLAN tag moves the IP header
        src = frame[at + 12:at + 16] if len(flow.client) == 4 else frame[at + 8:at + 24]
        key = (flow.key, src == flow.client)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(flow.verdict.rate_kbit, now)
            if len(self.buckets) > REMEMBERED:
                self.buckets.popitem(last=False)
        return bucket.take(len(frame), now)

    # -- injection -----------------------------------------------------------
    def reset_again(self, flow, trigger_of) -> None:
        """A packet of a flow already reset reached the censor (tap: the copy of
        the server's answer, racing the first RSTs): reset again with this
        packet's sequence numbers, which the receiver will accept. A few per
        flow at most."""
        sent = self.resets_sent.get(flow.key, 0)
        if sent >= RESETS_PER_FLOW:
            return
        trigger = trigger_of()                                # parsed only when needed
        if trigger is not None and trigger.frag is None:
            self.resets_sent[flow.key] = sent + 1
            if len(self.resets_sent) > REMEMBERED:
                self.resets_sent.popitem(last=False)
            self.send_resets(flow.verdict, trigger)

    def send_resets(self, verdict, trigger) -> None:
        """RST+ACKs to both ends, shaped as the verdict's rule says (count, windows)."""
        shape = verdict.resets or {}
        for forged in inject.tcp_resets(trigger, shape.get("count", 1), shape.get("windows")):
            self.port.send(forged)

    def answer_dns(self, verdict, trigger) -> None:
        answer = inject.dns_answer(trigger, verdict.answer)
        if answer:
            self.port.send(answer)
