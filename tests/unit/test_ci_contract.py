"""A green CI means what it says (issue 29): profile aliases resolved once,
expectations that cannot miss their cells, JUnit that follows the
expectations, compare that notices lost cells, provenance in every results
file. ``verify`` itself is replaced by a deterministic fake censor here
(the real runs are in tests/integration/test_verify.py and test_ci_example.py):
what is tested is everything around it."""

import json
import xml.etree.ElementTree as ET

import pytest

from tunnelwall.cli.main import main
from tunnelwall.harness import matrix
from tunnelwall.harness.runner import ToolResult


def fake_outcome(profile: str, tool: str, trial: int) -> str:
    # gfw-2025 blocks WireGuard always and Shadowsocks in 3 of every 4 trials.
    if profile == "gfw-2025" and (tool == "wireguard" or (tool == "shadowsocks" and trial % 4)):
        return "BLOCKED"
    return "PASSED"


@pytest.fixture
def fake_censor(monkeypatch):
    """verify() -> results as the real runner makes them: the profile and
    tool names the results carry are the loaded profile's and tool's."""
    from tunnelwall.harness import spec, verify as verify_mod
    from tunnelwall.middlebox import profiles
    calls = []

    def fake_verify(opts, say=None):
        calls.append(opts)
        source = getattr(opts, "profile_source", lambda p: p)
        tool_source = getattr(opts, "tool_source", lambda t: t)
        out = []
        for c in opts.cells():
            profile = profiles.load(source(c.profile)).name
            tool = spec.load(tool_source(c.tool)).name
            outcome = fake_outcome(profile, tool, c.trial)
            out.append(ToolResult(tool=tool, profile=profile, outcome=outcome, trial=c.trial, cell=c.index,
                                  bytes_expected=1000, bytes_through=1000 if outcome == "PASSED" else 0,
                                  rule="wireguard" if outcome == "BLOCKED" else None,
                                  action="drop" if outcome == "BLOCKED" else None))
        return out
    monkeypatch.setattr(verify_mod, "verify", fake_verify)
    return calls


def verify(*argv):
    return main(["verify", "--bytes", "1000", *argv])


# -- 1. aliases --------------------------------------------------------------

def test_expectation_by_alias_fails_when_the_tool_is_blocked(fake_censor, capsys):
    """Measured: `--profile gfw --expect gfw/wireguard=PASSED` exited 0 while
    WireGuard was BLOCKED (results say gfw-2025, the expectation said gfw)."""
    assert verify("--profile", "gfw", "--tools", "wireguard", "--expect", "gfw/wireguard=PASSED") == 1
    err = capsys.readouterr().err
    assert "expectation not met: gfw-2025/wireguard: expected PASSED, got BLOCKED" in err
    assert "profile gfw = gfw-2025" in err          # what gfw means is said where it is used


def test_alias_and_name_of_one_profile_are_one_profile(fake_censor):
    from tunnelwall.base.errors import TunnelwallError
    from tunnelwall.harness.verify import VerifyOptions, resolve
    opts = resolve(VerifyOptions(profiles=["gfw", "log-only"], tools=["https"]))
    assert opts.profiles == ["gfw-2025", "log-only"] and opts.profile_given == {"gfw-2025": "gfw"}
    assert [c.profile for c in opts.cells()] == ["gfw-2025", "log-only"]
    assert resolve(opts) == opts                       # once is enough: resolving again changes nothing
    with pytest.raises(TunnelwallError, match="'gfw-2025' is profile 'gfw-2025', which is already in the matrix"):
        resolve(VerifyOptions(profiles=["gfw", "gfw-2025"], tools=["https"]))


def test_merge_takes_a_file_whose_matrix_names_the_alias(tmp_path):
    """Measured: merge refused the demo's own results.json ('result 1 says
    gfw-2025/https trial 1, but cell 0 is gfw/https trial 1')."""
    cells = matrix.cells(["gfw"], ["https", "wireguard"], 1)
    results = [ToolResult(tool=c.tool, profile="gfw-2025", outcome="PASSED", cell=c.index).as_dict() for c in cells]
    meta = {"matrix": {"profiles": ["gfw"], "tools": ["https", "wireguard"], "trials": 1, "topology": "isp",
                       "bytes": 1000, "seed": None, "overrides": [], "placement": None, "ipv6": False,
                       "requests": None}}
    merged = matrix.merge([("results.json", {"schema": matrix.SCHEMA, "meta": meta, "results": results})])
    assert [r["profile"] for r in merged["results"]] == ["gfw-2025", "gfw-2025"]
    assert merged["meta"]["matrix"]["profiles"] == ["gfw-2025"]


def test_jobs_children_get_the_resolved_matrix():
    """--jobs/--cluster children run the same names the parent numbered
    (measured: `--profile gfw --jobs 2` ran every cell, then failed to merge),
    and through the harness, not the command line (issue 32)."""
    from tunnelwall.harness.verify import VerifyOptions, child_argv, resolve
    opts = resolve(VerifyOptions(profiles=["gfw"], tools=["https", "wireguard"]))
    argv = child_argv(opts, shard=(1, 2))
    assert argv[1:3] == ["-m", "tunnelwall.harness.child"]
    child = VerifyOptions.from_dict(json.loads(argv[3]))
    assert child.profiles == ["gfw-2025"] and child.profile_source("gfw-2025") == "gfw"
    assert [c.index for c in child.cells()] == [0]


# -- 2. expectations -----------------------------------------------------------

def test_expectation_matching_no_cell_is_an_error_before_anything_runs(fake_censor, capsys):
    """Measured: `--expect wireguad=PASSED` (a typo) exited 0."""
    assert verify("--profile", "gfw", "--tools", "https,wireguard", "--expect", "wireguad=PASSED") == 2
    err = capsys.readouterr().err
    assert "--expect 'wireguad=PASSED': matches no cell of the matrix (cells: gfw-2025/https, gfw-2025/wireguard)" in err
    assert fake_censor == []                    # nothing ran
    assert verify("--profile", "gfw", "--tools", "https", "--expect", "tspu/https=PASSED") == 2


@pytest.mark.parametrize("expectation,code", [("shadowsocks=BLOCKED@>=0.7", 0), ("shadowsocks=BLOCKED@≥0.8", 1),
                                              ("shadowsocks=BLOCKED@<=0.5", 1), ("shadowsocks=BLOCKED@≤75%", 0),
                                              ("shadowsocks=BLOCKED", 1), ("gfw-2025/https=PASSED", 0)])
def test_expectations_with_rates_over_trials(fake_censor, capsys, expectation, code):
    # 8 trials: blocked in 6 (75 %).
    assert verify("--profile", "gfw", "--tools", "https,shadowsocks", "--trials", "8", "--expect", expectation) == code
    if code:
        assert "expectation not met: gfw-2025/shadowsocks" in capsys.readouterr().err


def test_expectation_parse_errors_are_one_line():
    from tunnelwall.base.errors import TunnelwallError
    from tunnelwall.harness import expect
    for bad in ("wireguard", "wireguard=GREEN", "ss=BLOCKED@>=1.5", "ss=BLOCKED@>=x"):
        with pytest.raises(TunnelwallError, match=r"^--expect '"):
            expect.parse(bad)


# -- 3. JUnit ------------------------------------------------------------------

def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    return sum(int(s.get("failures")) for s in suites), sum(int(s.get("errors")) for s in suites), root


def test_junit_follows_the_expectations(fake_censor, tmp_path):
    """Measured: junit.xml had a failure per BLOCKED cell while verify exited 0."""
    assert verify("--profile", "gfw", "--tools", "https,wireguard", "--report", str(tmp_path / "a")) == 0
    failures, errors, root = junit_counts(tmp_path / "a" / "junit.xml")
    assert (failures, errors) == (0, 0)
    wg = root.find(".//testcase[@name='wireguard']")
    props = {p.get("name"): p.get("value") for p in wg.find("properties")}
    assert props["outcome"] == "BLOCKED" and props["rule"] == "wireguard" and props["expectation"] == "none"

    assert verify("--profile", "gfw", "--tools", "https,wireguard", "--expect", "wireguard=PASSED",
                  "--report", str(tmp_path / "b")) == 1
    failures, _e, root = junit_counts(tmp_path / "b" / "junit.xml")
    assert failures == 1
    assert "expected PASSED, got BLOCKED" in root.find(".//testcase[@name='wireguard']/failure").get("message")

    assert verify("--profile", "gfw", "--tools", "https,wireguard", "--expect", "wireguard=BLOCKED",
                  "--report", str(tmp_path / "c")) == 0
    assert junit_counts(tmp_path / "c" / "junit.xml")[0] == 0

    # The old reading, on request: every BLOCKED cell fails.
    assert verify("--profile", "gfw", "--tools", "https,wireguard", "--junit-outcomes-fail",
                  "--report", str(tmp_path / "d")) == 0
    assert junit_counts(tmp_path / "d" / "junit.xml")[0] == 1


# -- 4. compare ------------------------------------------------------------------

def results_file(path, rows, provenance=None):
    meta = {"provenance": provenance} if provenance else {}
    doc = {"schema": matrix.SCHEMA, "meta": meta,
           "results": [ToolResult(tool=t, profile=p, outcome=o).as_dict() for p, t, o in rows]}
    path.write_text(json.dumps(doc))
    return str(path)


def test_compare_fails_when_a_cell_disappeared_or_changed_profile_name(tmp_path, capsys):
    """Measured: a cell that disappeared was reported 'removed' with exit 0."""
    old = results_file(tmp_path / "old.json", [("gfw-2025", "mytool", "PASSED"), ("gfw-2025", "https", "PASSED")])
    gone = results_file(tmp_path / "gone.json", [("gfw-2025", "https", "PASSED")])
    assert main(["compare", old, gone]) == 1
    assert "gfw-2025/mytool: removed" in capsys.readouterr().err
    assert main(["compare", old, gone, "--allow-removed"]) == 0
    renamed = results_file(tmp_path / "renamed.json", [("gfw-2026", "mytool", "PASSED"),
                                                       ("gfw-2026", "https", "PASSED")])
    assert main(["compare", old, renamed]) == 1
    out = capsys.readouterr().out
    assert "renamed (profile gfw-2025 is now gfw-2026)" in out
    # An alias is the profile it stands for: no rename.
    alias = results_file(tmp_path / "alias.json", [("gfw", "mytool", "PASSED"), ("gfw", "https", "PASSED")])
    assert main(["compare", old, alias]) == 0


# -- 5. provenance ---------------------------------------------------------------

def test_results_record_provenance_and_the_seed_that_applied(fake_censor, tmp_path, capsys):
    """Measured: results stored `seed: None` although the profile's seed applied,
    and no version, commit or profile hash."""
    import hashlib

    from tunnelwall import __version__
    from tunnelwall.middlebox import profiles
    assert verify("--profile", "gfw", "--tools", "https", "--report", str(tmp_path)) == 0
    doc = matrix.load(tmp_path / "results.json")            # and it follows the schema
    prov = doc["meta"]["provenance"]
    gfw = profiles.load("gfw")
    assert prov["tunnelwall"] == __version__
    assert prov["datapath"] in ("kernel", "user") and prov["link_conditions"] in ("netem", "relay")
    (p,) = prov["profiles"]
    assert (p["name"], p["given"], p["seed"]) == ("gfw-2025", "gfw", gfw.seed)
    assert p["sha256"] == hashlib.sha256(open(gfw.source, "rb").read()).hexdigest()
    assert doc["meta"]["matrix"]["profile_given"] == {"gfw-2025": "gfw"}
    capsys.readouterr()
    assert verify("--profile", "gfw", "--tools", "https", "--seed", "9", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["meta"]["provenance"]["profiles"][0]["seed"] == 9


def test_compare_warns_when_provenance_differs(tmp_path, capsys):
    prov = {"tunnelwall": "0.2.0", "commit": "a" * 40, "dirty": False, "datapath": "user",
            "link_conditions": "relay", "tools": [],
            "profiles": [{"name": "gfw-2025", "given": "gfw", "file": "x", "sha256": "1" * 64, "seed": 0}]}
    other = {**prov, "datapath": "kernel",
             "profiles": [{"name": "gfw-2025", "given": "gfw", "file": "x", "sha256": "2" * 64, "seed": 3}]}
    a = results_file(tmp_path / "a.json", [("gfw-2025", "https", "PASSED")], prov)
    b = results_file(tmp_path / "b.json", [("gfw-2025", "https", "PASSED")], other)
    assert main(["compare", a, b]) == 0
    err = capsys.readouterr().err
    assert "datapath: user -> kernel" in err
    assert "profile gfw-2025: content changed (111111111111 -> 222222222222)" in err
    assert "profile gfw-2025: seed 0 -> 3" in err


# -- 8. profiles, current or historical ------------------------------------------

@pytest.mark.parametrize("period,status", [("2024-04..2025-12", "historical"), ("2023-08..", "current"),
                                           ("2020-02", "historical"), ("2026-01-08..", "current"),
                                           ("2024-11..2026-05", "historical"), ("2027-01..", "future"),
                                           ("2026-12..2026-12 (one month)", "current"), ("", "undated"),
                                           ("2025-08-20T00:34+08:00..2025-08-20T01:48+08:00", "historical")])
def test_profile_period_status(period, status):
    from datetime import date

    from tunnelwall.middlebox.profiles import periods
    assert periods.status(period, date(2026, 12, 7)) == status


def test_profiles_list_says_current_or_historical(capsys):
    """Measured: `profiles` did not say which profiles are history."""
    assert main(["profiles", "--format", "json"]) == 0
    rows = {r["profile"]: r for r in json.loads(capsys.readouterr().out)}
    assert {r["status"] for r in rows.values()} <= {"current", "historical", "future", "undated"}
    assert rows["tspu-2021"]["status"] == "historical"
    assert rows["gfw"]["alias_of"] == "gfw-2025" and rows["gfw"]["status"] == rows["gfw-2025"]["status"]


# -- issue 32: the layers below the command line do not start it ----------------

def test_no_layer_below_the_cli_starts_the_cli():
    """harness/verify.py (--jobs, --cluster) and classroom/spread.py started
    `python -m tunnelwall ...` (the top layer) from below it; their child
    processes now run the library (tunnelwall.harness.child, tunnelwall.classroom.task)."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("tunnelwall/harness", "tunnelwall/classroom", "tunnelwall/runtime", "tunnelwall/base",
                   "tunnelwall/services", "topologies", "middlebox", "controller"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.List):
                    words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                    if any(a == "-m" and b == "tunnelwall" for a, b in zip(words, words[1:])):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("argv,message", [
    (["tunnelwall.harness.child", '{"profiles": ["nosuch"], "tools": ["https"]}'], "unknown censor profile 'nosuch'"),
    (["tunnelwall.harness.child", "{"], "child: options are not VerifyOptions JSON"),
    (["tunnelwall.classroom.task", "check", '{"exercise": "find-blocked", "run": "nosuch-run"}'],
     "no run 'nosuch-run' is up"),
    (["tunnelwall.classroom.task", "stop", "{}"], "usage: python -m tunnelwall.classroom.task start|check|cleanup"),
])
def test_child_processes_fail_in_one_line(argv, message):
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_the_ci_guide_shows_the_recipe_that_is_tested():
    """docs/ci.md's workflow is examples/ci/github-actions.yml (without its
    comments), which tests/integration/test_ci_example.py runs."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "ci.md").read_text()
    shown = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    workflow = (root / "examples" / "ci" / "github-actions.yml").read_text()
    tested = "".join(line + "\n" for line in workflow.split("name: censorship", 1)[1].splitlines()
                     if not line.strip().startswith("#"))
    assert shown == "name: censorship" + tested


def test_a_rate_leaves_error_trials_out():
    from tunnelwall.harness import expect
    runs = [ToolResult(tool="ss", profile="p", outcome=o) for o in ("BLOCKED", "BLOCKED", "PASSED", "ERROR")]
    (miss,) = expect.evaluate([expect.parse("ss=BLOCKED@>=0.7")], runs)
    assert miss.detail.startswith("BLOCKED in at least 70% of trials, got 2 of 3 = 67% (95 % CI")
    assert expect.evaluate([expect.parse("ss=BLOCKED@>=0.6")], runs) == []
    (miss,) = expect.evaluate([expect.parse("ss=PASSED@>=0.5")], runs[3:])
    assert miss.detail == "PASSED in at least 50% of trials, but no trial ran without ERROR"
