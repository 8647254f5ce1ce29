"""The run state and its layout are read by attribute: no module outside
their own reads them by string key (``state.layout["nodes"]``,
``state.files.get("socket")``, ``layout["switches"]``), so a renamed field
is an AttributeError where it is used, not a KeyError at run time.

The scan is of the syntax: a subscript with a string, or a ``.get("...")``,
on anything called ``layout`` (a variable or an attribute), or on an
attribute called ``files`` or ``api`` (``run.files``; a local dict of files
is another thing). Whatever reads the same records' JSON (``inspect
--format json`` in the integration tests) reads a document, not the
record, and is not called that.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tunnelwall", "topologies", "middlebox", "controller", "tests", "benchmarks", "examples")
RECORDS = {"layout"}                  # as a variable or an attribute
ATTRIBUTES = {"files", "api"}         # as an attribute only
# Their own modules: the JSON forms are read there, by key.
OWN = {ROOT / "tunnelwall/base/layout.py", ROOT / "tunnelwall/base/runstate.py"}


def _is_record(node: ast.AST) -> bool:
    if isinstance(node, ast.Name):
        return node.id in RECORDS
    return isinstance(node, ast.Attribute) and node.attr in RECORDS | ATTRIBUTES


def string_keyed_reads(source: str, filename: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args:
            target, key = node.func.value, node.args[0]
        else:
            continue
        if _is_record(target) and isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.append((node.lineno, node.col_offset, f"{filename}:{node.lineno}: {ast.unparse(node)}"))
    return [text for _line, _col, text in sorted(found)]


def test_no_string_keyed_reads_of_the_run_state_or_layout():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in OWN or ".venv" in path.parts:
                continue
            found += string_keyed_reads(path.read_text(), str(path.relative_to(ROOT)))
    assert found == []


def test_the_scan_sees_string_keyed_reads():
    """The check above must be able to fail."""
    bad = ('state.layout["nodes"]\nlayout["switches"]["border"]\nrun.files.get("socket")\n'
           'state.api["port"]\nx.layout.nodes["c1"]\nfiles[0]\nfiles["cert"]\n')
    assert [line.split(": ", 1)[1] for line in string_keyed_reads(bad)] == [
        "state.layout['nodes']", "layout['switches']", "run.files.get('socket')", "state.api['port']"]
