"""Daemons end with everything they forked, and nothing else ends."""

import os
import subprocess
import sys
import time

from tunnelwall.base import procs, runstate
from tunnelwall.base.runstate import RunState


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_stop_ends_a_daemon_and_the_children_it_forked(tmp_path, monkeypatch):
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path / "state")
    state = RunState(run_id="unit", log_dir=str(tmp_path))
    pidfile = tmp_path / "child.pid"
    # Like SoftEther's execsvc: the daemon forks a worker that ignores the
    # parent's death, then waits.
    script = (f"import os, signal, time\n"
              f"pid = os.fork()\n"
              f"if pid == 0:\n"
              f"    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              f"    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
              f"    time.sleep(600)\n"
              f"time.sleep(600)\n")
    rec = procs.spawn(state, "forker", [sys.executable, "-c", script])
    assert _wait_for(lambda: pidfile.exists() and pidfile.read_text())
    child = int(pidfile.read_text())
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        assert procs.stop(rec, timeout=0.5)
        assert _wait_for(lambda: not _alive(child)), "the forked worker outlived its daemon"
        assert not _alive(rec.pid)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
        for pid in (child, rec.pid):
            if _alive(pid):
                os.kill(pid, 9)
