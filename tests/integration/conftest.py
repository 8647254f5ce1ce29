"""Integration tests: real namespaces, Open vSwitch, os-ken, real tools. Root only."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunnelwall.runtime.cleanup import existing_ifaces, existing_netns, labelled_bridges, teardown
from tunnelwall.base.runstate import SCOPES, STATE_DIR, active_run, all_runs

ROOT = Path(__file__).resolve().parents[2]
TUNNELWALL = [sys.executable, "-m", "tunnelwall"]


NOT_ROOT = "integration tests need root (they create namespaces and OVS bridges); as another user only the unit tests run"


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                # Skipped before any fixture runs (module fixtures build images, bring testbeds up).
                item.add_marker(pytest.mark.skip(reason=NOT_ROOT))


@pytest.fixture(autouse=True)
def _root_and_clean_slate():
    assert active_run() is None, "a tunnelwall run is already up: run 'tunnelwall cleanup' first"
    yield


def ours() -> dict:
    """Everything of tunnelwall's that exists on the machine right now."""
    pids = []
    for line in subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if any(k in args for k in ("controller.run", "middlebox.daemon", "services.webserver", "services.traffic",
                                   "services.udpecho",
                                   "collateral-sshd")):
            pids.append((int(pid), args))
    return {"netns": sorted(n for n in existing_netns() if _our_name(n)),
            "bridges": sorted(labelled_bridges()),
            "ifaces": sorted(i for i in existing_ifaces() if _our_name(i)),
            "daemons": pids,
            # The Docker engine's record is machine-level: it outlives `down`, `cleanup` stops it.
            "state": sorted(str(p.relative_to(STATE_DIR)) for p in STATE_DIR.rglob("*")
                            if p.is_file() and p.name != "engine.json") if STATE_DIR.exists() else []}


def _our_name(name: str) -> bool:
    """tw-... for the default run, tS-... for a run in scope S."""
    return name.startswith("tw-") or (len(name) > 3 and name[0] == "t" and name[1] in SCOPES and name[2] == "-")


@pytest.fixture
def run(request):
    """A testbed brought up with ``tunnelwall up *request.param*`` (use it with
    indirect parametrisation), torn down after the test; a process the test
    stopped (SIGSTOP: the supervisor, the middlebox) is let go on first, so
    nothing of the run outlives it."""
    tw("up", *request.param)
    state = active_run()
    yield state
    now = active_run()
    for rec in state.processes + (now.processes if now is not None else []):
        try:
            os.kill(rec.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    tw("down")
    assert_nothing_left()


def assert_nothing_left() -> None:
    left = ours()
    assert left == {"netns": [], "bridges": [], "ifaces": [], "daemons": [], "state": []}, left


def tw(*args, timeout=300, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run(TUNNELWALL + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and res.returncode != 0:
        raise AssertionError(f"tunnelwall {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def wait_for(condition, seconds: float, what: str):
    """Poll *condition* until it returns something true; fail after *seconds*.
    Tests wait for what they need, never for a fixed time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def listening(node: str, port: int) -> bool:
    """Something accepts TCP connections on *port* of *node*."""
    return f":{port} " in in_node(node, "ss -Htln").stdout


def in_node(node: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", f"tw-{node}", "sh", "-c", command], capture_output=True,
                          text=True, timeout=timeout)


# -- a cluster head and workers on this machine (test_cluster, test_cluster_class) --

@contextlib.contextmanager
def local_cluster(workers: tuple[str, ...] = ("w1", "w2")):
    """A head on a free port and named workers, all connected; yields the
    address and the daemons (head first). Afterwards every daemon is
    stopped (the last started first; SIGKILL after 20 s) and any testbed
    they left is torn down."""
    from tunnelwall.harness.cluster import connected_workers
    from tunnelwall.runtime.censor import free_port
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    daemons = [subprocess.Popen(TUNNELWALL + ["cluster", "head", "--port", str(port)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        for name in workers:
            daemons.append(subprocess.Popen(TUNNELWALL + ["cluster", "worker", address, "--name", name], cwd=ROOT,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True))
        wait_for(lambda: connected_workers(address) == len(workers), 60, f"{len(workers)} workers connected")
        yield address, daemons
    finally:
        for d in reversed(daemons):
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                try:
                    d.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    d.kill()
                    d.wait()
        for state in all_runs():
            teardown(state)
