"""Run scopes: several runs on one machine, each with names of its own."""

import threading

import pytest

from tunnelwall.base import runstate
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.topologies import resolve
from tunnelwall.topologies.layout import plan_layout


def test_scopes_are_claimed_once_each(dirs):
    first = runstate.new_run("isp", "gfw", scope=None)
    second = runstate.new_run("minimal", None, scope=None)
    assert (first.scope, second.scope) == ("", "1")
    with pytest.raises(TunnelwallError, match=r"already up in the default scope .*--scope auto"):
        runstate.new_run("isp", "gfw", scope="")
    with pytest.raises(TunnelwallError, match="already up in scope 1"):
        runstate.new_run("isp", "gfw", scope="1")
    with pytest.raises(TunnelwallError, match="scope 'ab': one of"):
        runstate.new_run("isp", "gfw", scope="ab")


def test_concurrent_claims_never_collide(dirs):
    got, lock = [], threading.Lock()

    def claim():
        s = runstate.new_run("isp", None, scope=None).scope
        with lock:
            got.append(s)
    threads = [threading.Thread(target=claim) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(["", *runstate.SCOPES[:11]])


def test_active_run_picks_by_id_scope_or_default(dirs, monkeypatch):
    assert runstate.active_run() is None
    a = runstate.new_run("isp", "gfw", scope=None)
    assert runstate.active_run().run_id == a.run_id
    b = runstate.new_run("minimal", None, scope=None)
    assert runstate.active_run().run_id == a.run_id            # several: the default one
    assert runstate.active_run("1").run_id == b.run_id
    assert runstate.active_run(b.run_id).run_id == b.run_id
    monkeypatch.setenv("TUNNELWALL_RUN", "1")
    assert runstate.active_run().run_id == b.run_id
    monkeypatch.delenv("TUNNELWALL_RUN")
    a.forget()
    c = runstate.new_run("isp", None, scope="7")
    with pytest.raises(TunnelwallError, match=r"several runs are up .*choose one with --run"):
        runstate.active_run()
    with pytest.raises(TunnelwallError, match="no run 'z' is up"):
        runstate.active_run("z")
    assert c.scope == "7"


def test_scoped_names_fit_linux_interface_names():
    """A scoped run's namespaces, bridges and switch ports never clash with
    the default run's, and stay within 15 bytes."""
    topo = resolve("classroom")
    default, scoped = plan_layout(topo, controlled=True), plan_layout(topo, controlled=True, scope="z")
    names = lambda lay: ({n.netns for n in lay.nodes.values()} | {s.bridge for s in lay.switches.values()}
                         | {p.iface for s in lay.switches.values() for p in s.ports.values()})
    assert not names(default) & names(scoped)
    assert all(len(n) <= 15 for n in names(scoped))
    assert scoped.nodes["st01"].netns == "tz-st01" and default.nodes["st01"].netns == "tw-st01"
    state = runstate.RunState(run_id="x", scope="z", layout=scoped)
    assert state.netns_of("web") == "tz-web"
