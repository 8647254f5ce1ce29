"""Issue 2/7: after SIGKILL, 'tunnelwall cleanup' removes all of ours and nothing else."""

import os
import signal
import subprocess
import time

from conftest import ROOT, TUNNELWALL, assert_nothing_left, ours, tw

from tunnelwall.base.runstate import active_run


def test_sigkill_during_up_then_cleanup():
    proc = subprocess.Popen(TUNNELWALL + ["up", "classroom"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Kill it mid-build: once some of its namespaces exist.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(ours()["netns"]) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ours()["netns"], "the kill came too late to test anything"
    tw("cleanup")
    assert_nothing_left()


def test_sigkill_every_process_then_cleanup():
    tw("up", "isp", "--profile", "gfw-2022")
    state = active_run()
    assert {p.name for p in state.processes} >= {"controller", "middlebox", "web-web"}
    for rec in state.processes:
        os.kill(rec.pid, signal.SIGKILL)
    res = tw("cleanup")
    assert "removed" in res.stdout
    assert_nothing_left()


def test_cleanup_leaves_foreign_resources_alone():
    """A namespace and a bridge with our prefix but not created by us survive."""
    subprocess.run(["ip", "netns", "add", "tw-foreign"], check=True)
    subprocess.run(["ovs-vsctl", "add-br", "tw-foreign", "--", "set", "bridge", "tw-foreign", "datapath_type=netdev"],
                   check=True)
    try:
        tw("up", "minimal", "--no-censor")
        tw("cleanup")
        assert "tw-foreign" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert subprocess.run(["ovs-vsctl", "br-exists", "tw-foreign"]).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", "tw-foreign"])
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", "tw-foreign"])
    assert_nothing_left()


def test_ctrl_c_during_up_removes_the_partial_network():
    # A terminal's Ctrl-C; SIGINT back to its default in the child, since a
    # shell's background job (CI run with &) starts with SIGINT ignored.
    proc = subprocess.Popen(TUNNELWALL + ["up", "classroom"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(ours()["netns"]) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "interrupted" in err and "Traceback" not in err, err
    assert_nothing_left()
