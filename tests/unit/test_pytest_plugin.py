"""The pytest plugin in a tool author's CI (issue 29): without root it fails
(not skips) when $CI is set; run_tool(..., trials=N) gives rates with
intervals; results reach pytest's JUnit as properties."""

import xml.etree.ElementTree as ET

import pytest

from tunnelwall.harness import fixtures, runner
from tunnelwall.harness.runner import ToolResult
from tunnelwall.harness.stats import wilson

pytest_plugins = ["pytester"]

NOT_ROOT = """
import os
os.geteuid = lambda: 1000      # this machine runs the tests as root: pretend otherwise
"""
A_TEST = """
def test_my_tool(tunnelwall_testbed):
    assert tunnelwall_testbed.run_tool("https").outcome == "PASSED"
"""


@pytest.mark.parametrize("ci,outcome", [("true", "errors"), (None, "skipped")])
def test_without_root_fails_in_ci_and_skips_elsewhere(pytester, monkeypatch, ci, outcome):
    """Measured: without root every test was skipped, so a CI job that forgot
    root was green."""
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(NOT_ROOT)
    pytester.makepyfile(A_TEST)
    res = pytester.runpytest_subprocess("-rfs")     # a process of its own: the geteuid patch stays there
    res.assert_outcomes(**{outcome: 1})       # a fixture's failure is a pytest error: red all the same
    assert (res.ret != 0) == bool(ci)
    if ci:
        res.stdout.fnmatch_lines(["*tunnelwall testbeds need root*$CI is set, so this fails instead of skipping*"])


class FakeState:
    profile = "gfw-2025"
    api = None


def test_run_tool_with_trials_gives_rates_and_records_them(monkeypatch):
    """Measured: run_tool had no trials, so a probabilistic rule gave a flaky single draw."""
    outcomes = iter(["BLOCKED", "PASSED", "BLOCKED", "ERROR", "BLOCKED", "PASSED"])
    monkeypatch.setattr(runner, "run_tool", lambda state, spec, opts: ToolResult(
        tool=spec.name, profile=state.profile, outcome=next(outcomes)))
    recorded = []
    bed = fixtures.Testbed(FakeState(), record=lambda k, v: recorded.append((k, v)))
    runs = bed.run_tool("shadowsocks", trials=6)
    assert [r.trial for r in runs.results] == [1, 2, 3, 4, 5, 6]
    lo, hi = wilson(3, 5)
    assert (runs.blocked.k, runs.blocked.n) == (3, 5) and runs.errors == 1      # an ERROR trial is left out
    assert (runs.blocked.low, runs.blocked.high) == (round(lo, 4), round(hi, 4))
    assert runs.blocked.value == 0.6 and runs.passed.k == 2
    assert ("tunnelwall.shadowsocks.blocked", str(runs.blocked)) in recorded
    assert str(runs.blocked) == f"3 of 5 = 60% (95 % CI {lo:.0%}-{hi:.0%})"
    with pytest.raises(ValueError):
        bed.run_tool("shadowsocks", trials=0)


def test_results_are_properties_in_pytests_junit(pytester, tmp_path):
    pytester.makeconftest("""
import pytest
from tunnelwall.harness import fixtures, runner
from tunnelwall.harness.runner import ToolResult

class FakeState:
    profile = "gfw-2025"
    api = None

@pytest.fixture
def bed(request, monkeypatch):
    monkeypatch.setattr(runner, "run_tool", lambda state, spec, opts: ToolResult(
        tool=spec.name, profile="gfw-2025", outcome="BLOCKED", rule="wireguard", packets_to_detection=1))
    factory = fixtures._Factory(request.config, record=lambda k, v: request.node.user_properties.append((k, v)))
    return fixtures.Testbed(FakeState(), record=factory.record)
""")
    pytester.makepyfile("""
def test_wireguard_is_blocked(bed):
    assert bed.run_tool("wireguard").outcome == "BLOCKED"
""")
    junit = tmp_path / "junit.xml"
    res = pytester.runpytest(f"--junitxml={junit}")
    res.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["tunnelwall.wireguard.outcome"] == "BLOCKED"
    assert props["tunnelwall.wireguard.rule"] == "wireguard"
    assert props["tunnelwall.wireguard.detection_packet"] == "1"
