"""A per-packet work budget for the parsers on the packet path.

Every loop of a parser that reads attacker-controlled lengths advances
through its input, so it ends (each loop says why in a comment). This is
the second line: such loops also :func:`spend` work units, and a parse
that spends more than :data:`UNITS_PER_PACKET` for one packet raises
:class:`BudgetExceeded` instead of running on. The engine catches it (and
any other exception a classifier raises) at the one place it feeds a
classifier, and turns it into an :class:`Unparsed` outcome: the classifier
gives up on that flow, the engine counts it (``stats["unparsed"]``) and the
log says which flow, classifier and packet. A metered parse of one packet
then costs the censor a bounded amount of work whatever the bytes, and a
bug in a classifier costs that classifier one flow, not the censor its
loop (issue 34: a QUIC Initial whose CRYPTO frame had length 0 looped
forever).

Why a counter and not a clock: the count of loop iterations is the same on
a loaded 2-core machine as on an idle one, so a budget that trips is a
property of the input, reproducible in a test; a clock-based one is not.

The counter is module-global (the engine runs on one thread, and a global
decrement is the cheapest check Python has); :func:`start` refills it and
turns metering on, :func:`stop` turns it off. Unmetered (before any
engine ran, or after :func:`stop`: tests, tools) the counter refills itself
when it runs out, so work spent by earlier calls never trips a later one.
The fuzzers meter each input with :func:`start`, as the engine does each
packet; offline classification stops metering when the capture is done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

# Work units one packet may cost: a unit is one iteration of a parser's
# loop (a frame, an extension, a record, a TCP segment). The largest
# legitimate input, a reassembled TLS stream of the censor's maximum
# (tcp.max_bytes) read by every classifier, takes a few thousand.
UNITS_PER_PACKET = 200_000

log = logging.getLogger("tunnelwall.middlebox")

_left = UNITS_PER_PACKET
_started = False            # True while the engine is metering (start() called)


class BudgetExceeded(RuntimeError):
    """A parse spent more than one packet's work budget."""

    def __init__(self, where: str):
        super().__init__(f"work budget exceeded in {where}")
        self.where = where


@dataclass(frozen=True)
class Unparsed:
    """What a classifier's failed parse of one packet comes to."""
    classifier: str          # e.g. "quic"
    flow: str                # the flow, as FlowId prints it
    packet: int              # 1-based index of the packet in its flow
    reason: str              # "work budget exceeded in quic CRYPTO frames", or the exception

    def line(self) -> str:
        return f"unparsed: {self.flow} packet {self.packet}: classifier {self.classifier}: {self.reason}"


def start(units: int | None = None) -> None:
    """A fresh budget (*units*, else :data:`UNITS_PER_PACKET`) for the
    packet about to be classified."""
    global _left, _started
    _left, _started = UNITS_PER_PACKET if units is None else units, True


def stop() -> None:
    """Back to the unmetered mode (refill when exhausted)."""
    global _left, _started
    _left, _started = UNITS_PER_PACKET, False


def spend(units: int, where: str) -> None:
    """Charge *units* of work to the current packet; raise
    :class:`BudgetExceeded` when it has none left."""
    global _left
    _left -= units
    if _left < 0:
        if not _started:
            _left = UNITS_PER_PACKET                # unmetered (no engine): nothing to bound
            return
        _left = 0
        raise BudgetExceeded(where)


def unparsed(engine_stats: dict, flow, clf, exc: BaseException) -> Unparsed:
    """The engine's handler for a classifier that raised on a packet: count
    it, note it on the flow, log one line (the engine then treats the
    classifier as DONE: it gives up on the flow)."""
    reason = str(exc) if isinstance(exc, BudgetExceeded) else f"{type(exc).__name__}: {exc}"
    outcome = Unparsed(clf.name, str(flow.id), flow.packets, reason)
    engine_stats["unparsed"] = engine_stats.get("unparsed", 0) + 1
    flow.notes[f"unparsed:{clf.name}"] = f"packet {outcome.packet}: {reason}"
    log.warning("%s", outcome.line())
    last.append(outcome)
    del last[:-UNPARSED_KEPT]
    return outcome


UNPARSED_KEPT = 16
# The most recent outcomes, newest last (offline classification clears it
# before a capture and reports them after; the count is the engine's).
last: list[Unparsed] = []
