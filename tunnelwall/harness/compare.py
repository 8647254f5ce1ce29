"""``tunnelwall compare OLD.json NEW.json``: what changed between two verify
runs, for a tool author's CI (exit 1 on a regression).

A row is a (profile, tool). With trials (``verify --trials N``) the block
rates are compared by their 95 % intervals: a change counts only when the
intervals do not overlap (more blocking is a regression, less an
improvement). With one run per tool the outcomes are compared: PASSED to
BLOCKED or DEGRADED, and anything to ERROR, are regressions.

A row of OLD that NEW lacks is ``removed``, and one whose tool is there
under another profile name (a renamed profile, an alias resolved another
way) is ``renamed``: a CI compared nothing for it, which ``tunnelwall
compare`` treats as a failure unless told otherwise (``--allow-removed``).
Profile aliases (``gfw``) are read as the profile they stand for.
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
        return {(matrix.canonical_profile(s["profile"]), s["tool"]): s for s in data["summary"]}
    out = {}
    results = [ToolResult.from_dict(r) for r in data["results"]]
    for r in results:
        r.profile = matrix.canonical_profile(r.profile) if r.profile else r.profile
    for s in summarize(results):
        out[(s["profile"], s["tool"])] = s
    for r in results:
        out[(r.profile, r.tool)]["outcome"] = r.outcome
    return out


def compare(old: dict, new: dict) -> list[dict]:
    before, after = rows_of(old), rows_of(new)
    rows = []
    gone = sorted(set(before) - set(after))
    came = sorted(set(after) - set(before))
    renamed: dict[tuple[str, str], tuple[str, str]] = {}
    for key in gone:
        # The same tool under a profile name NEW has and OLD had not: renamed.
        match = next((k for k in came if k[1] == key[1] and k not in renamed.values()), None)
        if match is not None:
            renamed[key] = match
    for key in sorted(set(before) | set(after)):
        if key in renamed.values():
            continue
        a, b = before.get(key), after.get(key)
        row = {"profile": key[0], "tool": key[1], "old": _show(a), "new": _show(b)}
        if key in renamed:
            b = after[renamed[key]]
            row.update(profile=f"{key[0]} -> {renamed[key][0]}", new=_show(b),
                       change=f"renamed (profile {key[0]} is now {renamed[key][0]})")
        elif a is None or b is None:
            row["change"] = "added" if a is None else "removed"
        elif "outcome" in a and "outcome" in b:
            row["change"] = _outcome_change(a["outcome"], b["outcome"])
        else:
            row["change"] = _rate_change(a, b)
        rows.append(row)
    return rows


def failures(rows: list[dict], allow_removed: bool = False) -> list[dict]:
    """The rows that make a comparison fail: regressions, and (unless
    allowed) cells that disappeared or changed profile name."""
    return [r for r in rows if r["change"].startswith("regression")
            or (not allow_removed and r["change"].startswith(("removed", "renamed")))]


def provenance_warnings(old: dict, new: dict) -> list[str]:
    """How the two runs' provenance differs (another tunnelwall, profile
    file, seed, datapath or link-condition mode), one line each."""
    from tunnelwall.harness.provenance import Provenance
    a, b = old["meta"].get("provenance"), new["meta"].get("provenance")
    if a is None or b is None:
        which = " and ".join(n for n, d in (("OLD", a), ("NEW", b)) if d is None)
        return [f"{which} records no provenance (written by an older tunnelwall): whether the runs are "
                f"comparable is unknown"]
    return Provenance.from_dict(a).differences(Provenance.from_dict(b))


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
