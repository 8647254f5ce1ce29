"""The fidelity table as text, JSON-ready dicts and the Markdown that
docs/censors.md carries (between its ``fidelity:begin``/``end`` markers)."""

from __future__ import annotations

from . import Report

BEGIN, END = "<!-- fidelity:begin (tunnelwall fidelity --format markdown) -->", "<!-- fidelity:end -->"


def summary_line(report: Report) -> str:
    if not report.rows:
        return f"{report.profile}: no published vector applies (the profile cites no source that can be replayed)"
    return f"{report.profile}: {report.agreeing} of {len(report.rows)} agree"


def table_rows(report: Report) -> list[dict]:
    return [{"set": r.set, "vector": r.vector, "published": r.published, "emulated": r.emulated,
             "agree": "yes" if r.agree else "NO", "source": r.source} for r in report.rows]


def notes(report: Report) -> list[str]:
    return [f"{r.vector}: {r.note}" for r in report.rows if not r.agree]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(reports: list[Report]) -> str:
    lines = [BEGIN, "",
             "| profile | vectors | agree | disagree |", "| --- | --- | --- | --- |"]
    for rep in reports:
        lines.append(f"| `{rep.profile}` | {len(rep.rows)} | {rep.agreeing} | {len(rep.rows) - rep.agreeing} |")
    for rep in reports:
        lines += ["", f"#### `{rep.profile}`", ""]
        if not rep.rows:
            lines.append("No published vector applies: the profile cites no source that can be replayed.")
            continue
        lines += ["| set | vector | published | emulated | agree | source |", "| --- | --- | --- | --- | --- | --- |"]
        for r in rep.rows:
            lines.append(f"| {r.set} | {_cell(r.vector)} | {_cell(r.published)} | {_cell(r.emulated)} | "
                         f"{'yes' if r.agree else '**no**'} | {_cell(r.source)} |")
        for line in notes(rep):
            lines += ["", f"Disagreement, explained: {line}"]
    lines += ["", END]
    return "\n".join(lines)
