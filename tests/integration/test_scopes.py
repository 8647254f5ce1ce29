"""Several testbeds at once on one machine (run scopes), and the verify
matrix spread over them (--jobs) or split into shards and merged."""

import json

from tunnelwall.base.runstate import active_run, all_runs
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, run_tool
from tunnelwall.runtime.cleanup import existing_netns, labelled_bridges, teardown
from tunnelwall.runtime.network import UpOptions, up

from conftest import ROOT, assert_nothing_left, tw


def test_two_testbeds_side_by_side_and_cleanup_of_one_spares_the_other():
    a = up(UpOptions(topology="isp", profile="gfw-2025", scope=None))
    b = None
    try:
        b = up(UpOptions(topology="minimal", profile="log-only", scope=None))
        assert (a.scope, b.scope) == ("", "1")
        assert {a.netns_of("c1"), b.netns_of("c1")} == {"tw-c1", "t1-c1"}
        assert set(a.bridges).isdisjoint(b.bridges) and set(a.root_ifaces).isdisjoint(b.root_ifaces)
        # The same addresses and MACs exist in both (10.0.0.0/8 inside): they
        # never meet, and each censor judges only its own testbed's flows.
        wg_a = run_tool(a, spec.load("wireguard"))
        wg_b = run_tool(b, spec.load("wireguard"))
        assert (wg_a.outcome, wg_a.rule) == (BLOCKED, "wireguard")
        assert wg_b.outcome == PASSED and wg_b.detected and wg_b.rule == "wireguard"   # log-only: logged
        assert wg_b.bytes_through == wg_b.bytes_expected
        # `tunnelwall cleanup RUN` removes that run and nothing of the other.
        out = tw("cleanup", b.run_id).stdout
        assert "netns t1-c1" in out and "tw-" not in out
        b = None
        assert [r.run_id for r in all_runs()] == [a.run_id]
        assert not any(n.startswith("t1-") for n in existing_netns())
        assert set(a.bridges) <= set(labelled_bridges())
        again = run_tool(active_run(), spec.load("https"))
        assert again.outcome == PASSED and again.bytes_through == again.bytes_expected
    finally:
        for state in (b, a):
            if state is not None:
                teardown(state)
    assert_nothing_left()


def test_verify_jobs_and_shards_agree_with_one_run(tmp_path):
    """The same deterministic matrix three ways: in one process, over two
    testbeds side by side (--jobs 2), and as two shards merged."""
    matrix = ["--profile", "gfw-2025,log-only", "--tools", "https,wireguard,openvpn-udp",
              "--bytes", "200000", "--seed", "3", "--format", "json"]
    one = json.loads(tw("verify", *matrix, timeout=600).stdout)
    jobs = json.loads(tw("verify", *matrix, "--jobs", "2", timeout=600).stdout)
    parts = []
    for k in (1, 2):
        path = tmp_path / f"shard{k}.json"
        path.write_text(tw("verify", *matrix, "--shard", f"{k}/2", timeout=600).stdout)
        parts.append(str(path))
    merged_path = tmp_path / "all.json"
    tw("merge", *parts, "-o", str(merged_path))
    merged = json.loads(merged_path.read_text())

    def cells(doc):
        return [(r["cell"], r["profile"], r["tool"], r["trial"], r["outcome"], r["rule"]) for r in doc["results"]]
    assert len(cells(one)) == 6
    assert cells(jobs) == cells(one)
    assert cells(merged) == cells(one)
    assert {(c[1], c[2]): c[4] for c in cells(one)} == {
        ("gfw-2025", "https"): PASSED, ("gfw-2025", "wireguard"): BLOCKED, ("gfw-2025", "openvpn-udp"): BLOCKED,
        ("log-only", "https"): PASSED, ("log-only", "wireguard"): PASSED, ("log-only", "openvpn-udp"): PASSED}
    assert jobs["meta"]["jobs"] == 2 and merged["meta"]["merged_from"] == 2
    assert_nothing_left()


def test_pytest_plugin_under_xdist_runs_testbeds_side_by_side():
    """A tool author's suite with pytest-xdist: each worker's testbed gets
    its own run scope, so the two tests' testbeds are up at the same time."""
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                          "examples/test_my_tool.py"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
    assert_nothing_left()
