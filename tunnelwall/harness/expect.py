"""Expectations of a verify run (``--expect [PROFILE/]TOOL=OUTCOME[@RATE]``),
as a CI states them: "WireGuard is blocked under gfw", "my tool passes
everywhere", "with 20 trials, Shadowsocks is blocked in at least 70 % of
them under gfw-2022" (``shadowsocks=BLOCKED@>=0.7``; ``≥`` and ``≤`` work too).

An expectation is matched against the matrix *before* anything runs: its
profile (an alias such as ``gfw`` is read as the profile it stands for) and
tool must name cells of the matrix, or it is an error listing the cells; a
typo can never make a CI green. Without a rate, every trial of the matched
cells must have the outcome; with one, the share of the trials that had it
must meet the bound (ERROR trials are left out of the share, as in the
block rates of ``stats``: a tool that failed says nothing about the censor;
they fail the run on their own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness.runner import BLOCKED, DEGRADED, ERROR, PASSED, ToolResult

OUTCOMES = (PASSED, BLOCKED, DEGRADED, ERROR)
_FORM = re.compile(r"^\s*(?:(?P<profile>[^=/]+)/)?(?P<tool>[^=/]+?)\s*=\s*(?P<outcome>[A-Za-z]+)"
                   r"(?:\s*@\s*(?P<op>>=|<=|≥|≤)?\s*(?P<rate>[0-9]*\.?[0-9]+)(?P<pct>%)?)?\s*$")
HOW = "write [PROFILE/]TOOL=OUTCOME[@>=RATE], e.g. gfw/wireguard=BLOCKED or shadowsocks=BLOCKED@>=0.7"


@dataclass(frozen=True)
class Expectation:
    text: str                       # as given
    profile: str | None             # None: every profile of the matrix
    tool: str
    outcome: str
    rate: float | None = None       # with trials: the share of trials with *outcome*
    at_least: bool = True           # rate is a lower bound (>=), else an upper one (<=)

    def applies(self, profile: str | None, tool: str) -> bool:
        return tool == self.tool and (self.profile is None or profile == self.profile)


@dataclass(frozen=True)
class Miss:
    expectation: Expectation
    profile: str
    tool: str
    detail: str

    def __str__(self) -> str:
        return f"{self.profile}/{self.tool}: expected {self.detail}"


def parse(text: str) -> Expectation:
    m = _FORM.match(text)
    if not m:
        raise TunnelwallError(f"--expect '{text}': {HOW}")
    outcome = m.group("outcome").upper()
    if outcome not in OUTCOMES:
        raise TunnelwallError(f"--expect '{text}': outcome is one of {', '.join(OUTCOMES)}")
    rate = None
    if m.group("rate") is not None:
        rate = float(m.group("rate")) / (100.0 if m.group("pct") else 1.0)
        if not 0.0 <= rate <= 1.0:
            raise TunnelwallError(f"--expect '{text}': a rate is between 0 and 1 (or 0% and 100%)")
    return Expectation(text=text, profile=(m.group("profile") or "").strip() or None, tool=m.group("tool").strip(),
                       outcome=outcome, rate=rate, at_least=m.group("op") not in ("<=", "≤"))


def bind(expectations: list[Expectation], profiles: list[str], tools: list[str], profile_given: dict[str, str],
         tool_given: dict[str, str], aliases: dict[str, str]) -> list[Expectation]:
    """The expectations in the matrix's names (an alias or a path as given
    becomes the profile's or tool's name); one that matches no cell is an
    error naming the cells there are."""
    given_profile = {g: n for n, g in profile_given.items()}
    given_tool = {g: n for n, g in tool_given.items()}
    out = []
    for e in expectations:
        profile = e.profile
        if profile is not None:
            profile = given_profile.get(profile) or aliases.get(profile, profile)
        tool = given_tool.get(e.tool, e.tool)
        if tool not in tools or (profile is not None and profile not in profiles):
            cells = ", ".join(f"{p}/{t}" for p in profiles for t in tools)
            raise TunnelwallError(f"--expect '{e.text}': matches no cell of the matrix (cells: {cells})")
        out.append(Expectation(text=e.text, profile=profile, tool=tool, outcome=e.outcome, rate=e.rate,
                               at_least=e.at_least))
    return out


def evaluate(expectations: list[Expectation], results: list[ToolResult]) -> list[Miss]:
    """The expectations the results miss, one per (expectation, profile, tool)."""
    misses = []
    for e in expectations:
        groups: dict[tuple[str, str], list[ToolResult]] = {}
        for r in results:
            if e.applies(r.profile, r.tool):
                groups.setdefault((r.profile or "-", r.tool), []).append(r)
        for (profile, tool), runs in sorted(groups.items()):
            miss = _miss(e, runs)
            if miss:
                misses.append(Miss(e, profile, tool, miss))
    return misses


def _miss(e: Expectation, runs: list[ToolResult]) -> str | None:
    outcomes = [r.outcome for r in runs]
    if e.rate is None:
        others = sorted({o for o in outcomes if o != e.outcome})
        if not others:
            return None
        if len(runs) == 1:
            return f"{e.outcome}, got {outcomes[0]}"
        return f"{e.outcome} in every trial, got {', '.join(f'{o} {outcomes.count(o)}x' for o in others)} " \
               f"of {len(runs)}"
    from tunnelwall.harness.stats import TrialResults
    rate = TrialResults(tool=runs[0].tool, profile=runs[0].profile, results=runs).rate(e.outcome)
    bound = f"{e.outcome} in {'at least' if e.at_least else 'at most'} {e.rate:.0%} of trials"
    if rate.value is None:
        return f"{bound}, but no trial ran without ERROR"
    if (rate.value >= e.rate) if e.at_least else (rate.value <= e.rate):
        return None
    return f"{bound}, got {rate}"


def verdict_of(expectations: list[Expectation], misses: list[Miss], result: ToolResult) -> tuple[bool, str]:
    """(whether *result*'s cell has an expectation, the miss that concerns it or '')."""
    mine = [e for e in expectations if e.applies(result.profile, result.tool)]
    missed = [m for m in misses if m.profile == (result.profile or "-") and m.tool == result.tool]
    return bool(mine), "; ".join(str(m) for m in missed)
