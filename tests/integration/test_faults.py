"""Issue 7: components die mid-run; the border fails open or closed as the
profile says, the supervisor restarts them, enforcement resumes, and the
verdict log keeps every complete line."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import in_node, wait_for

from tunnelwall.runtime.api import Api
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, RunOptions, run_tool
from tunnelwall.base.runstate import active_run

FETCH = "curl -sk -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 4 https://198.18.0.10/bytes/1000"


def wait_ready(state, timeout=15):
    api = Api(state)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            h = api.health()
            if h["switch_connected"] and h["middlebox_connected"]:
                return h
        except Exception:   # noqa: BLE001 - the controller may be restarting
            pass
        time.sleep(0.2)
    raise AssertionError("censor did not come back")


def complete_lines(path):
    text = open(path).read()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("run,expect_while_down", [(["isp", "--profile", "gfw-2022"], "closed"),
                                                  (["isp", "--profile", "log-only"], "open")],
                         indirect=["run"])
def test_middlebox_killed_fails_as_declared_then_restarts(run, expect_while_down):
    supervisor = run.process("supervisor")
    middlebox = run.process("middlebox")
    assert in_node("c1", FETCH).stdout == "200"
    os.kill(supervisor.pid, signal.SIGSTOP)          # hold the restart back to observe the gap
    os.kill(middlebox.pid, signal.SIGKILL)
    wait_for(lambda: Api(run).health()["middlebox_connected"] is False, 5, "the controller to notice")
    code = in_node("c2", FETCH).stdout
    assert (code == "200") == (expect_while_down == "open"), code
    os.kill(supervisor.pid, signal.SIGCONT)
    wait_ready(run)
    assert active_run().process("middlebox").pid != middlebox.pid
    wg = run_tool(active_run(), spec.load("wireguard"))
    assert wg.rule == "wireguard" and wg.outcome == (BLOCKED if expect_while_down == "closed" else PASSED)
    assert in_node("c3", FETCH).stdout == "200"
    complete_lines(run.files.verdict_log)


@pytest.mark.parametrize("run", [["isp", "--profile", "gfw-2022"]], indirect=True)
def test_middlebox_killed_during_a_transfer_the_allowed_flow_continues(run):
    results = {}
    transfer = threading.Thread(target=lambda: results.update(
        https=run_tool(run, spec.load("https"), RunOptions(bytes=150_000_000))))
    transfer.start()
    # Kill once the transfer's flow has its verdict, i.e. runs on its switch rule.
    wait_for(lambda: any(v["flow"]["server_port"] == 443 and v["action"] == "allow" for v in Api(run).verdicts()),
             10, "the transfer's verdict")
    os.kill(active_run().process("middlebox").pid, signal.SIGKILL)
    transfer.join(timeout=120)
    assert results["https"].outcome == PASSED, results["https"].error
    wait_ready(run)
    assert run_tool(active_run(), spec.load("openvpn-udp")).outcome == BLOCKED
    complete_lines(run.files.verdict_log)


@pytest.mark.parametrize("run", [["isp", "--profile", "gfw-2022", "--set", "fet.probability=1",
                                  "--set", "fet.residual=60"]], indirect=True)
def test_controller_killed_restarts_with_its_residual_blocks(run):
    ss = run_tool(run, spec.load("shadowsocks"))
    assert ss.outcome == BLOCKED and ss.rule == "fet"
    lines_before = complete_lines(run.files.verdict_log)
    controller = run.process("controller")
    os.kill(controller.pid, signal.SIGKILL)
    wait_for(lambda: active_run().process("controller").pid != controller.pid, 30, "the restarted controller")
    wait_ready(run, timeout=30)
    blocks = Api(active_run()).blocks()
    assert any(b["server_port"] == 8388 and b["rule"] == "fet" and b["seconds_left"] > 30 for b in blocks), blocks
    flows = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "tw-border"], capture_output=True,
                           text=True).stdout
    assert "tp_dst=8388" in flows and "actions=drop" in flows
    # Nothing written before the kill was lost or torn.
    after = complete_lines(run.files.verdict_log)
    assert after[:len(lines_before)] == lines_before
    assert run_tool(active_run(), spec.load("wireguard")).outcome == BLOCKED


@pytest.mark.parametrize("run,fail", [(["isp", "--profile", "gfw-2022"], "closed"),
                                      (["isp", "--profile", "log-only"], "open")], indirect=["run"])
def test_while_the_controller_is_down_the_border_fails_as_declared(run, fail):
    """The window between the controller's death and its restart: OVS keeps
    the pipeline (secure) or falls back to a plain switch (standalone); in
    both, allowed traffic flows. A fail-closed censor keeps censoring: the
    inline middlebox holds the blocked flow back on its own and hands the
    verdict over when the controller is back, so the log misses nothing."""
    supervisor, controller, middlebox = (run.process(n) for n in ("supervisor", "controller", "middlebox"))
    os.kill(supervisor.pid, signal.SIGSTOP)
    os.kill(controller.pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{controller.pid}"), 5, "the controller to be gone")
    outage_start = time.time()
    assert in_node("c2", FETCH).stdout == "200"
    wg = run_tool(run, spec.load("wireguard"))
    assert wg.connected == (fail == "open"), (wg.outcome, wg.error)
    outage_end = time.time()
    os.kill(supervisor.pid, signal.SIGCONT)
    wait_ready(run, timeout=30)
    assert active_run().process("middlebox").pid == middlebox.pid    # it lived through the outage
    if fail == "closed":
        lines = complete_lines(run.files.verdict_log)
        held = [v for v in lines if v.get("rule") == "wireguard" and outage_start <= v["decided"] <= outage_end]
        assert held and held[0]["action"] == "drop", lines[-5:]
    assert run_tool(active_run(), spec.load("wireguard")).outcome == (BLOCKED if fail == "closed" else PASSED)


@pytest.mark.parametrize("run", [["isp", "--profile", "gfw-2022"]], indirect=True)
def test_open_vswitch_restart_then_enforcement_resumes(run):
    assert run_tool(run, spec.load("wireguard")).outcome == BLOCKED
    res = subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "restart", "--system-id=random"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    wait_ready(run, timeout=30)
    assert run_tool(active_run(), spec.load("https")).outcome == PASSED
    assert run_tool(active_run(), spec.load("wireguard")).outcome == BLOCKED
