"""Issue 34: a middlebox that is alive but makes no progress (its loop
stuck, or the process stopped) is found by the supervisor's watchdog
within well under a second plus one check, the border does at once what
the profile's overload policy says, the stall is counted in /api/health and
the verdict log, and the restarted middlebox gets the blocks and verdicts
of the last one back."""

import json
import os
import re
import signal
import time

import pytest
from conftest import in_node, wait_for

from tunnelwall.base.runstate import active_run
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, run_tool
from tunnelwall.runtime.api import Api

FETCH = "curl -sk -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 4 https://198.18.0.10/bytes/1000"


def ended(pid: int) -> bool:
    """Gone, or a zombie its parent (not us) has yet to reap."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def log_records(path) -> list[dict]:
    return [json.loads(line) for line in open(path).read().splitlines()]


@pytest.mark.parametrize("run", [["isp", "--profile", "gfw-2022", "--set", "fet.probability=1",
                                  "--set", "fet.residual=120"]], indirect=True)
def test_a_stopped_middlebox_is_restarted_counted_and_gets_its_blocks_back(run):
    ss = run_tool(run, spec.load("shadowsocks"))
    assert ss.outcome == BLOCKED and ss.rule == "fet"
    old = run.process("middlebox")
    assert Api(run).health()["watchdog_restarts"] == 0
    stopped_at = time.monotonic()
    os.kill(old.pid, signal.SIGSTOP)                     # alive, in the process table, and doing nothing
    new = wait_for(lambda: (r := active_run().process("middlebox")) and r.pid != old.pid and r, 10,
                   "the watchdog to restart the middlebox")
    noticed = time.monotonic() - stopped_at
    wait_for(lambda: ended(old.pid), 5, "the stuck process to be ended")   # not left behind, stopped
    health = wait_for(lambda: (h := Api(run).health())["middlebox_connected"] and h, 30, "the new middlebox")
    assert health["watchdog_restarts"] == 1 and not health["middlebox_stalled"]
    stalls = [r for r in log_records(run.files.verdict_log) if r.get("type") == "watchdog"]
    assert len(stalls) == 1 and stalls[0]["pid"] == old.pid and stalls[0]["stalled_ms"] >= 500
    assert stalls[0]["policy"] == "closed"
    # Found within the watchdog's time plus the supervisor's checks, with room for a loaded machine.
    assert noticed < 5.0, noticed
    # The new middlebox has the old one's residual block and still censors.
    assert run_tool(active_run(), spec.load("shadowsocks")).outcome == BLOCKED
    assert run_tool(active_run(), spec.load("wireguard")).outcome == BLOCKED
    assert in_node("c1", FETCH).stdout == "200"
    assert re.search(r"restored [1-9]\d* residual blocks", (run.logs / "middlebox.log").read_text())
    assert new.pid != old.pid
