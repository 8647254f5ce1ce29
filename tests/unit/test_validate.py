"""tunnelwall validate reads each file's kind from its content, follows a
tool's extends, checks that what a file names exists, and reports every
file; tunnelwall topologies lists the catalogue; star:N errors are one line
(issues 29 and 31)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "tunnelwall", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def lab(tmp_path):
    """A lab team's folder: a copied profile named like nothing in particular,
    a topology filed under lab-profiles/, a topology whose profile does not
    exist, and the example tool (extends stunnel)."""
    profile = (ROOT / "middlebox/profiles/iran-2026.yaml").read_text().replace("name: iran-2026", "name: iran-mine")
    (tmp_path / "iran-mine.yaml").write_text(profile)
    (tmp_path / "lab-profiles").mkdir()
    (tmp_path / "lab-profiles" / "topo.yaml").write_text((ROOT / "topologies/minimal.yaml").read_text())
    isp = (ROOT / "topologies/isp.yaml").read_text()
    assert "  profile: gfw\n" in isp
    (tmp_path / "future.yaml").write_text(isp.replace("  profile: gfw\n", "  profile: gfw-2099\n"))
    return tmp_path


def test_the_example_tool_validates():
    """Measured: `validate examples/my-tls-tunnel.yaml` failed (unknown top-level key 'extends')."""
    res = cli("validate", "examples/my-tls-tunnel.yaml")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "examples/my-tls-tunnel.yaml: ok (tool 'my-tls-tunnel', extends 'stunnel')\n"


def test_exercise_files_validate_with_what_they_name():
    """Measured: validate rejected an exercise file."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "exercises").glob("*.yaml"))
    res = cli("validate", *files)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(": ok (exercise '") == len(files) >= 4
    assert "profile gfw (= gfw-2025)" in res.stdout


def test_kind_comes_from_content_not_path(lab):
    """Measured: a copied profile iran-mine.yaml was parsed as a topology, a
    topology under lab-profiles/ as a profile."""
    res = cli("validate", "iran-mine.yaml", "lab-profiles/topo.yaml", cwd=lab)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["iran-mine.yaml: ok (profile 'iran-mine', 5 rules)",
                                       "lab-profiles/topo.yaml: ok (topology 'minimal', 3 hosts, 1 switches, "
                                       "3 links, censor profile log-only)"]


def test_every_file_is_reported_and_names_must_exist(lab):
    """Measured: a topology whose profile is gfw-2099 was accepted, and
    validate stopped at the first bad file."""
    res = cli("validate", "future.yaml", "iran-mine.yaml", "nonsense.yaml", str(ROOT / "README.md"), cwd=lab)
    assert res.returncode == 2
    assert res.stdout == "iran-mine.yaml: ok (profile 'iran-mine', 5 rules)\n"
    err = res.stderr.splitlines()
    line = next(i for i, t in enumerate((lab / "future.yaml").read_text().splitlines(), 1) if "gfw-2099" in t)
    assert err[0].startswith(f"tunnelwall: future.yaml:{line}: censor.profile: unknown censor profile 'gfw-2099'")
    assert err[1] == "tunnelwall: nonsense.yaml: file not found"
    assert err[2].startswith(f"tunnelwall: {ROOT / 'README.md'}:")
    assert err[3] == "tunnelwall: validate: 3 of 4 files have errors"
    assert "Traceback" not in res.stderr


def test_a_file_of_no_kind_is_one_line(tmp_path):
    (tmp_path / "what.yaml").write_text("hello: world\n")
    res = cli("validate", str(tmp_path / "what.yaml"))
    assert res.returncode == 2
    assert res.stderr == (f"tunnelwall: {tmp_path / 'what.yaml'}:1: cannot tell what this file is: a topology has "
                          f"'nodes', a censor profile 'rules', a tool 'traffic' (or 'extends'), an exercise 'checks'\n")


@pytest.mark.parametrize("kind", ["topology", "profile"])
def test_kind_can_be_forced(lab, kind):
    res = cli("validate", "--kind", kind, "iran-mine.yaml", cwd=lab)
    assert (res.returncode == 0) == (kind == "profile")


def test_topologies_lists_the_catalogue():
    """Measured: no verb listed the topologies."""
    res = cli("topologies", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = {r["topology"]: r for r in json.loads(res.stdout)}
    assert {p.stem for p in (ROOT / "topologies").glob("*.yaml")} | {"star:N"} == set(rows)
    # 9 written hosts and 1 + 9 routers of link hops (isp.yaml)
    assert rows["isp"]["hosts"] == 19 and rows["isp"]["hops"] == "1+9" and rows["isp"]["censor"] == "gfw (= gfw-2025)" and rows["isp"]["description"]
    table = cli("topologies")
    assert len(table.stdout.strip().splitlines()) == len(rows) + 1


@pytest.mark.parametrize("verb", [["up"], ["validate"]])
def test_star_with_a_bad_count_is_a_clear_line(verb):
    """Measured: `star:abc` printed "invalid literal for int() with base 10: 'abc'"."""
    res = cli(*verb, "star:abc")
    assert res.returncode == 2
    assert res.stderr == "tunnelwall: topology 'star:abc': star:N takes a whole number of clients, e.g. star:50\n"
