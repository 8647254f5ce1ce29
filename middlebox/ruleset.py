"""The profile's rules, compiled for matching: the censor's decisions.

A flow is judged twice: on its first packet by the *address rules* (rules
that need no detection: IP lists, ports, transports, direction), and on
every detection a classifier reports by the *detection rules* (protocol,
signal, confidence, names, fingerprints, and the same address fields). A
rule's ``unless`` is an exception judged the same way. A rule that matches
still has to win its probability draw (a seeded RNG: the same capture and
seed give the same verdicts); a rule that lost it is remembered on the flow
(``spared``) and never drawn again for that flow.

Pure matching: no flow table, no packets, no I/O (see :mod:`.engine`).
"""

from __future__ import annotations

import ipaddress
import random
from fnmatch import fnmatchcase

from tunnelwall.base.protocols import NAMES, TCP, UDP

from .classifiers.base import Detection
from .flow import Flow
from .profiles import Match, Profile, Rule

TRANSPORTS = {p: NAMES[p] for p in (TCP, UDP)}   # what a rule's `transport` names
NAME_KEYS = ("sni", "qname", "host")   # detection details matched against a rule's name list


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
        while at >= 0:                              # advances: find() from past the last dot
            if name[at + 1:] in domains:
                return True
            at = name.find(".", at + 1)
        return any(fnmatchcase(name, g) for g in self.globs)


class RuleSet:
    """A profile's rules, split by what they need, with compiled name lists
    and the seeded draws."""

    def __init__(self, profile: Profile, seed: int | None = None):
        self.profile = profile
        self.rng = random.Random(profile.seed if seed is None else seed)
        self.address_rules = [r for r in profile.rules if not r.needs_detection]
        self.detection_rules = [r for r in profile.rules if r.needs_detection]
        # (id of a rule's match or unless, "sni" | "qname" | "host") -> its names, compiled
        self.name_sets = {(id(m), key): NameSet(getattr(m, key)) for r in profile.rules
                          for m in (r.match, r.unless) if m is not None
                          for key in NAME_KEYS if getattr(m, key) is not None}

    @property
    def wanted_protocols(self) -> set[str]:
        """Protocols some rule asks for (policy classifiers run only for these)."""
        return {p for r in self.profile.rules if r.match.protocols for p in r.match.protocols}

    def first_address_rule(self, flow: Flow) -> Rule | None:
        """The first address rule that matches *flow* and wins its draw."""
        for rule in self.address_rules:
            if self.address_match(rule, flow) and self.draw(rule, flow):
                return rule
        return None

    def first_detection_rule(self, flow: Flow, detection: Detection) -> Rule | None:
        """The first detection rule that matches *detection*, was not spared
        for this flow, and wins its draw."""
        for rule in self.detection_rules:
            if self.detection_match(rule, flow, detection) and rule.name not in flow.spared:
                if self.draw(rule, flow):
                    return rule
        return None

    def draw(self, rule: Rule, flow: Flow) -> bool:
        if rule.probability >= 1.0 or self.rng.random() < rule.probability:
            return True
        flow.spared.append(rule.name)
        return False

    # -- matching ---------------------------------------------------------
    def address_match(self, rule: Rule, flow: Flow) -> bool:
        if not self.addresses_fit(rule.match, flow):
            return False
        # Address rules have address-only exceptions (a rule whose `unless` needs a
        # detection is a detection rule): judge them on the addresses too.
        return rule.unless is None or not self.addresses_fit(rule.unless, flow)

    def addresses_fit(self, m: Match, flow: Flow) -> bool:
        if m.ip_version is not None and m.ip_version != (6 if len(flow.server) == 16 else 4):
            return False
        if m.sport_gt_dport is not None and m.sport_gt_dport != (flow.client_port > flow.server_port):
            return False
        if m.direction is not None:
            client_in, server_in = self.inside(flow.client), self.inside(flow.server)
            crossing = (client_in and not server_in) if m.direction == "outbound" else (server_in and not client_in)
            if not crossing:
                return False
        if m.transport and m.transport != TRANSPORTS.get(flow.proto):
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

    def inside(self, address: bytes) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.profile.inside)

    def detection_match(self, rule: Rule, flow: Flow, det: Detection) -> bool:
        if not self.detection_fits(rule.match, flow, det):
            return False
        return rule.unless is None or not self.detection_fits(rule.unless, flow, det)

    def detection_fits(self, m: Match, flow: Flow, det: Detection) -> bool:
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
        return self.addresses_fit(m, flow)
