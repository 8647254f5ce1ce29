"""Reports of a verify run: terminal table, JSON, JUnit XML, HTML with a chart."""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tunnelwall.base.table import format_table
from tunnelwall.harness.runner import BLOCKED, DEGRADED, ERROR, PASSED, ToolResult

COLOURS = {PASSED: "#2e7d32", BLOCKED: "#c62828", DEGRADED: "#ef6c00", ERROR: "#6a1b9a"}
COLUMNS = ["profile", "tool", "outcome", "connected", "bytes", "detected", "rule", "detection", "mbit/s", "probing"]


def rows(results: list[ToolResult]) -> list[dict]:
    out = []
    for r in results:
        detection = "-"
        if r.detected and r.packets_to_detection is not None:
            detection = f"pkt {r.packets_to_detection} / {r.ms_to_detection:.1f} ms"
        out.append({"profile": r.profile or "-", "tool": r.tool, "outcome": r.outcome,
                    "connected": "yes" if r.connected else "no",
                    "bytes": f"{r.bytes_through}/{r.bytes_expected}",
                    "detected": "yes" if r.detected else ("spared" if r.spared_by else "no"),
                    "rule": r.rule or (", ".join(r.spared_by) + " (p)" if r.spared_by else "-"), "detection": detection,
                    "mbit/s": f"{r.mbit_s:.1f}" if r.mbit_s else "-",
                    "probing": {None: "-", True: f"confirmed ({r.probe_fingerprint})",
                                False: f"not confirmed ({r.probe_fingerprint})"}[r.confirmed_by_probing]})
    return out


def table(results: list[ToolResult]) -> str:
    lines = [format_table(rows(results), COLUMNS)]
    errors = [r for r in results if r.outcome == ERROR]
    for r in errors:
        lines.append(f"\n{r.profile}/{r.tool}: ERROR: {r.error}")
        if r.log:
            lines += ["    " + line for line in r.log.splitlines()[-12:]]
    for r in results:
        if r.note:
            lines.append(f"\n{r.profile}/{r.tool}: note: {r.note}")
    return "\n".join(lines)


def to_json(results: list[ToolResult], meta: dict, summary: list[dict] | None = None) -> str:
    from tunnelwall.harness.matrix import SCHEMA
    out = {"schema": SCHEMA, "meta": meta, "results": [r.as_dict() for r in results]}
    if summary:
        out["summary"] = summary
    return json.dumps(out, indent=1, default=str)


@dataclass(frozen=True)
class JunitPolicy:
    """What makes a JUnit test case fail. A cell fails when it misses an
    expectation (``verify --expect``) or is an ERROR; a BLOCKED cell nobody
    stated an expectation about is a finding, reported as properties, not a
    failure. ``outcomes_fail`` restores the old reading: every BLOCKED or
    DEGRADED cell is a failure."""
    expectations: tuple = ()          # harness.expect.Expectation
    misses: tuple = ()                # harness.expect.Miss
    outcomes_fail: bool = False


def junit(results: list[ToolResult], meta: dict, policy: JunitPolicy | None = None) -> str:
    from tunnelwall.harness import expect
    policy = policy or JunitPolicy()
    suites = ET.Element("testsuites", name="tunnelwall verify")
    by_profile: dict[str, list[ToolResult]] = {}
    for r in results:
        by_profile.setdefault(r.profile or "-", []).append(r)
    trials = any(r.trial > 1 for r in results)
    for profile, items in by_profile.items():
        cases = []
        for r in items:
            expected, missed = expect.verdict_of(list(policy.expectations), list(policy.misses), r)
            if r.outcome == ERROR and r.unsupported:
                kind = "skipped"
            elif r.outcome == ERROR:
                kind = "error"
            elif missed or (policy.outcomes_fail and r.outcome in (BLOCKED, DEGRADED)):
                kind = "failure"
            else:
                kind = "ok"
            cases.append((r, kind, expected, missed))
        suite = ET.SubElement(suites, "testsuite", name=f"censor-{profile}", tests=str(len(items)),
                              failures=str(sum(k == "failure" for _r, k, _e, _m in cases)),
                              errors=str(sum(k == "error" for _r, k, _e, _m in cases)),
                              skipped=str(sum(k == "skipped" for _r, k, _e, _m in cases)),
                              timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"))
        props = ET.SubElement(suite, "properties")
        for key, value in meta.items():
            ET.SubElement(props, "property", name=str(key),
                          value=json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))
        for r, kind, expected, missed in cases:
            name = r.tool + (f" trial {r.trial}" if trials else "")
            case = ET.SubElement(suite, "testcase", classname=f"tunnelwall.{profile}", name=name,
                                 time=f"{r.seconds:.3f}")
            cprops = ET.SubElement(case, "properties")
            for key, value in (("outcome", r.outcome), ("rule", r.rule or ""), ("action", r.action or ""),
                               ("detection_packet", r.packets_to_detection if r.packets_to_detection else ""),
                               ("expectation", ", ".join(e.text for e in policy.expectations
                                                         if e.applies(r.profile, r.tool)) or "none")):
                ET.SubElement(cprops, "property", name=key, value=str(value))
            if kind == "skipped":
                ET.SubElement(case, "skipped", message=r.error or "cannot run on this machine")
            elif kind == "error":
                el = ET.SubElement(case, "error", message=r.error or "tool error", type="ERROR")
                el.text = r.log
            elif kind == "failure":
                found = f"{r.outcome}: rule {r.rule} ({r.action}) at packet {r.packets_to_detection}" if r.rule \
                    else f"{r.outcome}: {r.error}"
                el = ET.SubElement(case, "failure", message=f"{missed} ({found})" if missed else found,
                                   type="expectation" if missed else r.outcome)
                el.text = json.dumps(r.verdicts[:20], default=str)
            out = ET.SubElement(case, "system-out")
            out.text = json.dumps({k: v for k, v in r.as_dict().items() if k not in ("verdicts", "log")}, default=str)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _charts(results: list[ToolResult], summary: list[dict] | None) -> str:
    from tunnelwall.harness import charts, stats
    if not results:
        return ""
    if not charts.available():
        return "<p>(charts need matplotlib: scripts/setup.sh installs python3-matplotlib)</p>"
    summary = summary or stats.summarize(results)
    one_run_each = all(s["trials"] + s["errors"] <= 1 for s in summary)
    first = ("Outcomes", charts.outcome_grid(results)) if one_run_each else ("Block rates", charts.block_rates(summary))
    parts = [first, ("Detection", charts.detection(results)),
             ("Throughput", charts.throughput(results))]
    return "".join(f'<figure class="chart" data-chart="{html.escape(name)}">{charts.strip_ids(svg)}</figure>'
                   for name, svg in parts if svg)


def html_report(results: list[ToolResult], meta: dict, summary: list[dict] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for r, row in zip(results, rows(results)):
        cells = "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in COLUMNS)
        body.append(f'<tr class="{r.outcome.lower()}">{cells}</tr>')
        if r.outcome == ERROR:
            body.append(f'<tr><td colspan="{len(COLUMNS)}"><pre>{html.escape(r.error + chr(10) + r.log)}</pre></td></tr>')
    metas = "".join(f"<li><b>{html.escape(str(k))}</b>: "
                    f"{html.escape(json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))}</li>"
                    for k, v in meta.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunnelwall verify</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
figure.chart {{ margin: 1em 0; }} figure.chart svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
tr.passed td:nth-child(3) {{ color: {COLOURS[PASSED]}; font-weight: bold; }}
tr.blocked td:nth-child(3) {{ color: {COLOURS[BLOCKED]}; font-weight: bold; }}
tr.degraded td:nth-child(3) {{ color: {COLOURS[DEGRADED]}; font-weight: bold; }}
tr.error td:nth-child(3) {{ color: {COLOURS[ERROR]}; font-weight: bold; }}
</style></head><body>
<h1>tunnelwall verify</h1><ul>{metas}</ul>
<h2>Charts</h2>{_charts(results, summary)}
<h2>Matrix</h2><table id="matrix"><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
</body></html>
"""


def write_all(results: list[ToolResult], meta: dict, directory: str | Path,
              summary: list[dict] | None = None, policy: JunitPolicy | None = None) -> dict[str, Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = {"json": d / "results.json", "junit": d / "junit.xml", "html": d / "report.html"}
    files["json"].write_text(to_json(results, meta, summary))
    files["junit"].write_text(junit(results, meta, policy))
    files["html"].write_text(html_report(results, meta, summary))
    return files
