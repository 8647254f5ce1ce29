"""How faithful is a profile? Published test vectors, replayed offline.

A *vector* is a small capture built byte by byte (a handshake and the
packets a paper describes), the outcome the paper published for it, the
source, and the profiles it applies to. :func:`evaluate` feeds each vector
applicable to a profile through that profile's engine (the same engine as
``classify`` and the live censor) and compares the emulated outcome with
the published one. A disagreement is a finding: each vector that is known
to disagree says why in its ``note``, and ``docs/censors.md`` carries the
table (``tunnelwall fidelity --format markdown``).

Vector sets are pluggable: a module listed in ``SET_MODULES`` defines
``VECTORS`` (a sequence of :class:`Vector`); :func:`vector_sets` imports
them in order. Adding a set is one module and one line here.

Outcomes are compared on a small scale (``BLOCKED``, ``NOT_BLOCKED``,
``PROBED``, ``THROTTLED``, ``FROZEN``, or a stated shape such as the RSTs
an injection sends); the published rates of probabilistic rules are not
drawn here (every rule's probability is set to 1, so a vector says whether
the rule *applies*); the rates themselves are compared as reference rows
(:class:`Reference`), which check that the profile carries the published
figure.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .. import profiles
from ..engine import Engine
from ..flow import Flow

BLOCKED, NOT_BLOCKED, PROBED, THROTTLED, FROZEN = "blocked", "not blocked", "probed", "throttled", "frozen"

# The vector sets, in the order the table lists them. A set module defines
# VECTORS (Vector and Reference instances).
SET_MODULES = ("tcp_model", "fet", "tor", "tls", "quic", "quic_malformed", "vpn", "port443", "tspu", "iran", "rates")

Frames = list[tuple[float, bytes]]


@dataclass(frozen=True)
class Vector:
    set: str                              # e.g. "fet-boundaries"
    name: str                             # what the input is, in words
    build: Callable[[], Frames]           # the capture: (timestamp, Ethernet frame) in order
    published: str                        # the outcome the source published
    source: str                           # paper (section) or report
    profiles: tuple[str, ...]             # the profiles it applies to (names, not aliases)
    # The emulated outcome of the capture's first flow; the default reads its verdict.
    outcome: Callable[[Profile_, list[Flow], Engine], tuple[str, str]] | None = None
    note: str = ""                        # why it disagrees, where it does (a finding, explained)


Profile_ = profiles.Profile


@dataclass(frozen=True)
class Reference:
    """A published rate the profile takes as a parameter: the row checks
    that the profile carries the figure, and says so."""
    set: str
    name: str
    rule: str                             # the profile's rule that carries the rate
    published: float
    source: str
    profiles: tuple[str, ...]
    note: str = ""


@dataclass
class Row:
    profile: str
    set: str
    vector: str
    published: str
    emulated: str
    detail: str
    agree: bool
    source: str
    note: str = ""
    kind: str = "vector"                  # vector or reference

    def as_dict(self) -> dict:
        return {"profile": self.profile, "set": self.set, "vector": self.vector, "published": self.published,
                "emulated": self.emulated, "detail": self.detail, "agree": self.agree, "source": self.source,
                "note": self.note, "kind": self.kind}


@dataclass
class Report:
    profile: str
    rows: list[Row] = field(default_factory=list)

    @property
    def agreeing(self) -> int:
        return sum(r.agree for r in self.rows)

    def as_dict(self) -> dict:
        return {"profile": self.profile, "vectors": len(self.rows), "agree": self.agreeing,
                "disagree": len(self.rows) - self.agreeing, "rows": [r.as_dict() for r in self.rows]}


def vector_sets() -> list[Vector | Reference]:
    out: list[Vector | Reference] = []
    for name in SET_MODULES:
        out.extend(importlib.import_module(f"{__name__}.{name}").VECTORS)
    return out


def verdict_outcome(profile: Profile_, flows: list[Flow], engine: Engine) -> tuple[str, str]:
    """(outcome, detail) of the capture's first flow, from its verdict."""
    if not flows:
        return NOT_BLOCKED, "no flow"
    v = flows[0].verdict
    if v is None or v.action == "allow":
        return NOT_BLOCKED, f"no rule (protocol {flows[0].protocol or '-'})"
    detail = f"{v.action} by {v.rule}, packet {v.packet_index}"
    if v.action == "log":
        return NOT_BLOCKED, f"logged by {v.rule}"
    if v.note.startswith("frozen"):
        return FROZEN, f"{v.note} ({v.rule})"
    if v.action in ("drop", "reset"):
        return BLOCKED, detail
    return {"probe": PROBED, "throttle": THROTTLED, "freeze": FROZEN}.get(v.action, v.action), detail


def replay(profile: Profile_, frames: Frames) -> tuple[list[Flow], Engine]:
    """Feed *frames* to a fresh engine for *profile*; the flows in order of their first packet."""
    flows: list[Flow] = []
    engine = Engine(profile, on_evict=flows.append)
    for ts, frame in frames:
        engine.feed(frame, ts)
        engine.pending.clear()
    flows += engine.all_flows()
    return sorted(flows, key=lambda f: f.first_ts), engine


def certain(profile: Profile_) -> Profile_:
    """The profile with every rule's probability 1: a vector asks whether a rule applies."""
    for rule in profile.rules:
        rule.probability = 1.0
    return profile


def evaluate(spec: str | Profile_, vectors: Sequence[Vector | Reference] | None = None) -> Report:
    """Every vector applicable to the profile *spec* (a name, a YAML path or
    a loaded profile); *vectors* defaults to every registered set."""
    base = profiles.load(spec) if isinstance(spec, str) else spec
    report = Report(base.name)
    for item in (vector_sets() if vectors is None else vectors):
        if base.name not in item.profiles:
            continue
        if isinstance(item, Reference):
            report.rows.append(_reference_row(base, item))
            continue
        profile = certain(copy.deepcopy(base))        # each vector meets a fresh censor
        flows, engine = replay(profile, item.build())
        emulated, detail = (item.outcome or verdict_outcome)(profile, flows, engine)
        report.rows.append(Row(base.name, item.set, item.name, item.published, emulated, detail,
                               emulated == item.published, item.source, item.note))
    return report


def _reference_row(profile: Profile_, ref: Reference) -> Row:
    rule = next((r for r in profile.rules if r.name == ref.rule), None)
    have = rule.probability if rule is not None else None
    emulated = f"{have:g}" if have is not None else "no such rule"
    return Row(profile.name, ref.set, ref.name, f"{ref.published:g}", emulated,
               f"rule {ref.rule}'s probability (a parameter, not a measurement of the detector)",
               have is not None and abs(have - ref.published) < 1e-9, ref.source, ref.note, kind="reference")


def profile_names() -> list[str]:
    """The built-in profiles, without the aliases (gfw is gfw-2025)."""
    return sorted(name for name in profiles.available() if name not in profiles.ALIASES)
