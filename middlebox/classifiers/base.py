"""The one small interface every protocol classifier implements.

A classifier looks at a flow's first packets and either names the protocol
(a :class:`Detection`), gives up (:data:`DONE`), or asks for more (``None``).
It keeps whatever it needs in a per-flow *state* object that it creates in
``start``; apart from that state it is a pure function of the bytes it is
fed, so it can be tested byte-exactly without any network.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tunnelwall.base.verdict import Detection  # noqa: F401 - every classifier reports one

from ..packet import TCP, UDP


class _Done:
    def __repr__(self) -> str:
        return "DONE"


DONE = _Done()   # the classifier has seen enough of this flow and found nothing

C2S, S2C = 0, 1  # packet directions: client -> server, server -> client


class StreamView:
    """What a stream-reading classifier is fed: the packet's fields, with
    the payload replaced by the direction's in-order bytes so far."""

    __slots__ = ("payload", "full", "proto", "flags", "seq", "ack", "sport", "dport", "src", "dst")

    def __init__(self, pkt, data: bytes, full: bool):
        self.payload, self.full = data, full
        self.proto, self.flags, self.seq, self.ack = pkt.proto, pkt.flags, pkt.seq, pkt.ack
        self.sport, self.dport, self.src, self.dst = pkt.sport, pkt.dport, pkt.src, pkt.dst


class ParamError(ValueError):
    """A classifier parameter in a profile is wrong; the profile loader adds file:line."""


class Classifier:
    """Base class: subclasses set ``name``, ``transports``, ``DEFAULTS`` and
    implement ``update`` (and ``start`` if they keep per-flow state)."""

    name: ClassVar[str] = ""
    transports: ClassVar[frozenset] = frozenset({TCP, UDP})
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    sees_inside_tunnels: ClassVar[bool] = False   # keeps going after another protocol is identified
    policy: ClassVar[bool] = False          # True: only runs when a rule matches its protocol
    reports: ClassVar[frozenset] = frozenset()   # protocols it can report (for policy classifiers)
    # True: on TCP it is fed the reassembled byte stream of the direction
    # (``pkt.payload`` is everything delivered in order so far, ``pkt.full``
    # says the censor's reassembly limit was reached) instead of single
    # packets, wherever the profile reassembles (``tcp.reassemble``).
    reads_stream: ClassVar[bool] = False
    # Data packets (both directions) this classifier may need before it can
    # decide; the engine keeps a flow under inspection for the largest budget
    # of its classifiers or the profile's ``inspect_packets``, whichever is more.
    budget: int = 0

    def __init__(self, params: dict | None = None):
        params = dict(params or {})
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise ParamError(f"unknown parameter(s) {', '.join(sorted(unknown))} for classifier '{self.name}' "
                             f"(known: {', '.join(sorted(self.DEFAULTS)) or 'none'})")
        merged = dict(self.DEFAULTS)
        for key, value in params.items():
            default = self.DEFAULTS[key]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ParamError(f"{self.name}.{key}: expected true or false, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ParamError(f"{self.name}.{key}: expected a number, got {value!r}")
            merged[key] = value
        self.params = merged
        self.configure()

    def configure(self) -> None:
        """Derive fast lookups from ``self.params`` (called once)."""

    def start(self, flow) -> Any:
        """Per-flow state, or None if this classifier never applies to *flow*."""
        return True

    def update(self, state, flow, pkt, direction: int):
        """Return a Detection, DONE, or None (feed me more)."""
        raise NotImplementedError
