"""``tunnelwall compare OLD.json NEW.json``: what changed between two verify
runs, for a tool author's CI (exit 1 on a regression).

A row is a (profile, tool). With trials (``verify --trials N``) the block
rates are compared by their 95 % intervals: a change counts only when the
intervals do not overlap (more blocking is a regression, less an
improvement). With one run per tool the outcomes are compared: PASSED to
BLOCKED or DEGRADED, and anything to ERROR, are regressions.
"""

from __future__ import annotations

from pathlib import Path

from tunnelwall.harness import matrix
from tunnelwall.harness.stats import summarize
from tunnelwall.harness.runner import ToolResult

RANK = {"PASSED": 0, "DEGRADED": 1, "BLOCKED": 2}


def load(path: str | Path) -> dict:
    """A results file, read and checked (harness.matrix.load)."""
    return matrix.load(path)


def rows_of(data: dict) -> dict[tuple[str, str], dict]:
    """Per (profile, tool): the summary row (trials) or the single outcome."""
    if data.get("summary"):
        return {(s["profile"], s["tool"]): s for s in data["summary"]}
    out = {}
    results = [ToolResult.from_dict(r) for r in data["results"]]
    for s in summarize(results):
        out[(s["profile"], s["tool"])] = s
    for r in data["results"]:
        out[(r["profile"], r["tool"])]["outcome"] = r["outcome"]
    return out


def compare(old: dict, new: dict) -> list[dict]:
    before, after = rows_of(old), rows_of(new)
    rows = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        row = {"profile": key[0], "tool": key[1], "old": _show(a), "new": _show(b)}
        if a is None or b is None:
            row["change"] = "added" if a is None else "removed"
        elif "outcome" in a and "outcome" in b:
            row["change"] = _outcome_change(a["outcome"], b["outcome"])
        else:
            row["change"] = _rate_change(a, b)
        rows.append(row)
    return rows


def _show(row: dict | None) -> str:
    if row is None:
        return "-"
    if "outcome" in row:
        return row["outcome"]
    lo, hi = row["ci95"]
    return f"{row['block_rate']:.0%} ({lo:.0%}-{hi:.0%}, n={row['trials']})" if row["block_rate"] is not None else "ERROR"


def _outcome_change(a: str, b: str) -> str:
    if a == b:
        return "same"
    if b == "ERROR":
        return "regression (the tool now fails)"
    if a == "ERROR":
        return "fixed"
    return "regression" if RANK[b] > RANK[a] else "improvement"


def _rate_change(a: dict, b: dict) -> str:
    if a["block_rate"] is None or b["block_rate"] is None:
        return "regression (the tool now fails)" if b["block_rate"] is None else "fixed"
    (alo, ahi), (blo, bhi) = a["ci95"], b["ci95"]
    if blo > ahi:
        return "regression"
    if bhi < alo:
        return "improvement"
    return "same (intervals overlap)"
