"""Rates with error bars over repeated trials.

Censors are probabilistic (the FET rule blocks 26.3 % of connections,
TLS-in-TLS detection has a true-positive rate), so one run per tool says
little. A tool's block rate over N trials comes with a 95 % Wilson score
interval (Wilson 1927; it behaves at rates near 0 and 1 and at small N,
where the normal approximation does not); the packet at which the censor
decided and the throughput of the runs that got through come as
distributions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from tunnelwall.harness.runner import BLOCKED, ERROR, ToolResult


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (z = 1.96: 95 %)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(results: list[ToolResult], seconds: float | None = None) -> list[dict]:
    """One row per (profile, tool): trials, block rate and its 95 % interval,
    detection packet and time (min / median / max), median Mbit/s of the
    runs that passed, and errors (never counted as blocked or passed)."""
    groups: dict[tuple[str, str], list[ToolResult]] = {}
    for r in results:
        groups.setdefault((r.profile, r.tool), []).append(r)
    rows = []
    for (profile, tool), runs in groups.items():
        valid = [r for r in runs if r.outcome != ERROR]
        blocked = sum(1 for r in valid if r.outcome == BLOCKED)
        lo, hi = wilson(blocked, len(valid))
        packets = sorted(r.packets_to_detection for r in valid if r.packets_to_detection)
        ms = sorted(r.ms_to_detection for r in valid if r.ms_to_detection is not None and r.packets_to_detection)
        speeds = [r.mbit_s for r in valid if r.outcome != BLOCKED and r.mbit_s]
        rows.append({
            "profile": profile, "tool": tool, "trials": len(valid), "errors": len(runs) - len(valid),
            "blocked": blocked, "block_rate": round(blocked / len(valid), 4) if valid else None,
            "ci95": [round(lo, 4), round(hi, 4)],
            "detection_packet": _spread(packets), "detection_ms": _spread(ms),
            "mbit_s_median": round(statistics.median(speeds), 1) if speeds else None})
    if seconds:
        for row in rows:
            row["trials_per_minute"] = round(len(results) / (seconds / 60.0), 1)
    return rows


def _spread(values: list) -> list | None:
    if not values:
        return None
    return [round(values[0], 3), round(statistics.median(values), 3), round(values[-1], 3)]


def table_rows(summary: list[dict]) -> list[dict]:
    """The summary as text cells for a terminal table."""
    out = []
    for s in summary:
        rate = "-" if s["block_rate"] is None else f"{s['block_rate']:.1%}"
        out.append({"profile": s["profile"], "tool": s["tool"], "trials": s["trials"], "blocked": s["blocked"],
                    "block rate": rate, "95% ci": f"{s['ci95'][0]:.1%}-{s['ci95'][1]:.1%}",
                    "detection pkt (min/med/max)": "/".join(map(str, s["detection_packet"] or [])) or "-",
                    "mbit/s (median)": s["mbit_s_median"] or "-", "errors": s["errors"]})
    return out


@dataclass(frozen=True)
class Rate:
    """k of n trials, with the 95 % Wilson interval of k/n."""
    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    def __str__(self) -> str:
        if not self.n:
            return "0 of 0 (no valid trial)"
        return f"{self.k} of {self.n} = {self.k / self.n:.0%} (95 % CI {self.low:.0%}-{self.high:.0%})"


@dataclass
class TrialResults:
    """One tool's repeated runs on one testbed (the pytest plugin's
    ``run_tool(..., trials=N)``): rates of each outcome with intervals."""
    tool: str
    profile: str | None
    results: list[ToolResult] = field(default_factory=list)

    def rate(self, outcome: str = BLOCKED) -> Rate:
        """The share of trials with *outcome*: ERROR trials are left out of
        the count (a tool that failed says nothing about the censor),
        except for the rate of ERROR itself."""
        pool = self.results if outcome == ERROR else [r for r in self.results if r.outcome != ERROR]
        k = sum(1 for r in pool if r.outcome == outcome)
        lo, hi = wilson(k, len(pool))
        return Rate(k, len(pool), round(lo, 4), round(hi, 4))

    @property
    def blocked(self) -> Rate:
        return self.rate(BLOCKED)

    @property
    def passed(self) -> Rate:
        from tunnelwall.harness.runner import PASSED
        return self.rate(PASSED)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.outcome == ERROR)
