"""The throttle's policer: a token bucket that drops what exceeds a rate,
as an OpenFlow meter with a drop band does on the switch.

One definition for both places a throttle verdict is enforced: the
controller sizes the switch's meter from :func:`burst_kbit`, and the inline
middlebox polices the flow's frames with :class:`Bucket` from the verdict
on, until the meter's rule takes the flow over. Without the latter, the
frames that passed between the verdict and the rule's installation (tens
of milliseconds, more on a loaded machine) went through at full speed, so
a throttled download's first second ran unthrottled; Russia's throttler
slowed Twitter from the first packets after the matching ClientHello
(Xue et al., "Throttling Twitter", IMC 2021)."""

from __future__ import annotations

BURST_SECONDS = 0.5


def burst_kbit(rate_kbit: int) -> int:
    """The bucket holds half a second of traffic (at least a few full-size
    packets): with a bucket of one packet TCP collapsed to about 49 kbit/s
    under a 130 kbit/s meter here, while under Russia's throttler people
    measured 130-150 kbit/s."""
    return max(64, int(rate_kbit * BURST_SECONDS))


class Bucket:
    """Tokens in bytes, refilled at *rate_kbit*, at most the burst; a frame
    passes if the bucket holds its size (which it then takes), else it is
    dropped. Starts full, as a new meter does."""

    __slots__ = ("rate", "depth", "tokens", "at")

    def __init__(self, rate_kbit: int, now: float):
        self.rate = rate_kbit * 1000 / 8                     # bytes per second
        self.depth = burst_kbit(rate_kbit) * 1000 / 8
        self.tokens, self.at = self.depth, now

    def take(self, size: int, now: float) -> bool:
        if now > self.at:
            self.tokens = min(self.depth, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens < size:
            return False
        self.tokens -= size
        return True
