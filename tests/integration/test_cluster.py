"""The verify matrix on a cluster: a head and two workers on this machine
(each worker's testbeds in run scopes of their own); one worker is killed
mid-run and the result is still complete, each cell reported once."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tunnelwall.base.runstate import all_runs

from conftest import ROOT, assert_nothing_left, local_cluster, wait_for

pytest.importorskip("distributed")
TW = [sys.executable, "-m", "tunnelwall"]


def children_with(pid: int, needle: str) -> list[int]:
    """Child processes of *pid* whose command line contains *needle*."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and needle in cmdline:
            found.append(int(d.name))
    return found


def test_cluster_survives_a_worker_killed_mid_run():
    with local_cluster(("w1", "w2")) as (address, daemons):
        workers = daemons[1:]
        run = subprocess.Popen(TW + ["verify", "--cluster", address, "--profile", "gfw-2025,log-only",
                                     "--tools", "https,wireguard,openvpn-udp", "--trials", "2", "--bytes", "200000",
                                     "--seed", "5", "--chunk", "2", "--format", "json"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill w1 while it is running a task (its tunnelwall.harness.child process exists).
        w1 = workers[0]
        def w1_busy():
            if run.poll() is not None:
                raise AssertionError(f"verify --cluster ended early: {run.stderr.read()[-2000:]}")
            return children_with(w1.pid, "tunnelwall.harness.child")
        wait_for(w1_busy, 120, "worker w1 running a task")
        os.kill(w1.pid, signal.SIGKILL)
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        doc = json.loads(out)
        cells = [(r["cell"], r["profile"], r["tool"], r["trial"], r["outcome"]) for r in doc["results"]]
        assert [c[0] for c in cells] == list(range(12))            # complete, each cell once, in order
        want = {("gfw-2025", "https"): "PASSED", ("gfw-2025", "wireguard"): "BLOCKED",
                ("gfw-2025", "openvpn-udp"): "BLOCKED", ("log-only", "https"): "PASSED",
                ("log-only", "wireguard"): "PASSED", ("log-only", "openvpn-udp"): "PASSED"}
        assert all(want[(p, t)] == o for _c, p, t, _trial, o in cells), cells
        assert "w2 ran" in err
        # The killed worker's task child tore its testbed down (SIGTERM on its parent's death).
        wait_for(lambda: not all_runs(), 60, "every testbed of the cluster torn down")
    assert_nothing_left()

