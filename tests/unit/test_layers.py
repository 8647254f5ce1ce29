"""The architecture, checked: imports point one way, and everything installs
under the one name ``tunnelwall``.

Ranks (a module may import its own package and packages of a lower rank):

    0  tunnelwall.base                          imports nothing of tunnelwall's
    1  tunnelwall.topologies / middlebox / controller / services
                                                each on its own: base only
    2  tunnelwall.runtime
    3  tunnelwall.harness
    4  tunnelwall.classroom
    5  tunnelwall.cli
    6  tunnelwall.pytest_plugin, tunnelwall.__main__ (entry points)
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"tunnelwall.topologies": ROOT / "topologies", "tunnelwall.middlebox": ROOT / "middlebox",
           "tunnelwall.controller": ROOT / "controller", "tunnelwall": ROOT / "tunnelwall"}
RANK = {"tunnelwall.base": 0, "tunnelwall.topologies": 1, "tunnelwall.middlebox": 1, "tunnelwall.controller": 1,
        "tunnelwall.services": 1, "tunnelwall.runtime": 2, "tunnelwall.harness": 3, "tunnelwall.classroom": 4,
        "tunnelwall.cli": 5, "tunnelwall.pytest_plugin": 6, "tunnelwall.__main__": 6, "tunnelwall": 0}


def modules():
    """(dotted name, path) of every module that installs."""
    for prefix, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            if prefix == "tunnelwall" and parts and f"tunnelwall.{parts[0]}" in FOLDERS:
                continue
            yield name, path


def layer(name: str) -> str:
    """The layer a module belongs to; names directly in ``tunnelwall``
    (``__version__``) belong to the package root, which is rank 0."""
    top = ".".join(name.split(".")[:2])
    return top if top in RANK else "tunnelwall"


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "tunnelwall" or (node.level and not node.module):
                # from tunnelwall import x / from .. import x: x may be a module
                out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
    return out


def test_every_module_has_a_layer():
    names = [n for n, _ in modules()]
    assert len(names) > 50
    assert [n for n in names if layer(n) not in RANK] == []


def test_imports_point_down():
    wrong = []
    for name, path in modules():
        mine = layer(name)
        for line, target in imports(name, path):
            top = target.split(".")[0]
            assert top not in ("middlebox", "controller", "topologies"), \
                f"{path}:{line}: imports '{target}': the installed name is tunnelwall.{target}"
            if top != "tunnelwall" or target == "tunnelwall":
                continue
            theirs = layer(target)
            if theirs == mine:
                continue
            if RANK[theirs] >= RANK[mine] or (mine == "tunnelwall.base"):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target}")
    assert wrong == []


def test_checker_sees_an_upward_import(tmp_path):
    """The check above must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from tunnelwall.runtime import network\nfrom .. import cli\n")
    found = imports("tunnelwall.middlebox.bad", bad)
    assert [t for _, t in found] == ["tunnelwall.runtime", "tunnelwall.cli"]
    assert all(RANK[layer(t)] > RANK["tunnelwall.middlebox"] for _, t in found)


def test_wheel_installs_only_tunnelwall(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for item in ("pyproject.toml", "setup.py", "README.md", "tunnelwall", "topologies", "middlebox", "controller"):
        p = ROOT / item
        if p.is_dir():
            shutil.copytree(p, src / item, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy(p, src / item)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          str(src), "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"tunnelwall"}
    for data in ("tunnelwall/middlebox/profiles/gfw-2025.yaml", "tunnelwall/topologies/isp.yaml",
                 "tunnelwall/controller/web/index.html", "tunnelwall/tools/wireguard.yaml",
                 "tunnelwall/tools/private-state.sh", "tunnelwall/tools/vpnc-script.sh",
                 "tunnelwall/harness/tool.schema.json", "tunnelwall/classroom/exercise.schema.json",
                 "tunnelwall/middlebox/profiles/schema.json", "tunnelwall/topologies/schema.json"):
        assert data in names
    if shutil.which("gcc"):      # the optional C walk is compiled into the wheel where it can be
        assert any(n.startswith("tunnelwall/middlebox/_fastpath.") and n.endswith(".so") for n in names), names


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (a package's import of a
    name resolves to the module of that name when there is one)."""
    names = {n for n, _ in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules():
        edges = set()
        for _line, target in imports(name, path):
            while target and target not in names:
                target = target.rpartition(".")[0]        # tunnelwall.base.verdict.Verdict -> the module
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# Packages whose __init__ re-exports from their own modules: the package
# and its modules import each other by design (``from .x import y`` in
# __init__, ``from . import z`` in x), which is not a cycle between files.
def test_no_import_cycle_between_files():
    graph = import_graph()
    packages = {n for n, p in modules() if p.name == "__init__.py"}
    found = [c for c in cycles({n: {t for t in e if t not in packages} for n, e in graph.items()})]
    assert found == []


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
