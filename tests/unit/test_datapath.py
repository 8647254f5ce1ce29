"""Which Open vSwitch datapath a run takes (topologies/datapath.py), and
that the connection tracker is flushed in that datapath by name."""

import subprocess

import pytest

from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError
from tunnelwall.runtime import cleanup
from tunnelwall.topologies import datapath


@pytest.mark.parametrize("asked, loaded, kind", [
    ("auto", True, "kernel"), ("auto", False, "user"),
    ("kernel", True, "kernel"), ("kernel", False, None),
    ("user", True, "user"), ("user", False, "user"),
])
def test_choice_by_what_was_asked_and_the_module(asked, loaded, kind):
    assert datapath.choose(asked, loaded) == kind


def test_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="choose one of auto, kernel, user"):
        datapath.choose("dpdk", True)


def test_module_loaded_reads_sys_module(tmp_path):
    assert not datapath.module_loaded(tmp_path)
    (tmp_path / "openvswitch").mkdir()
    assert datapath.module_loaded(tmp_path)


def test_kernel_without_a_loadable_module_is_one_clear_error(monkeypatch):
    tried = []
    monkeypatch.setattr(datapath, "module_loaded", lambda: False)
    monkeypatch.setattr(datapath.subprocess, "run", lambda argv, **kw: tried.append(argv) or subprocess.CompletedProcess(
        argv, 1, "", "modprobe: FATAL: Module openvswitch not found in directory /lib/modules/6.18\n"))
    with pytest.raises(EnvironmentProblem) as err:
        datapath.resolve("kernel")
    assert tried == [["modprobe", "openvswitch"]]
    assert str(err.value) == ("--datapath kernel: Open vSwitch's kernel module is not available (modprobe: FATAL: "
                              "Module openvswitch not found in directory /lib/modules/6.18); use --datapath user "
                              "(or auto)")


def test_kernel_is_taken_once_modprobe_loaded_it(monkeypatch):
    loaded = [False]
    monkeypatch.setattr(datapath, "module_loaded", lambda: loaded[0])

    def modprobe(argv, **kw):
        loaded[0] = True
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(datapath.subprocess, "run", modprobe)
    assert datapath.resolve("kernel") == "kernel"
    assert datapath.resolve("auto") == "kernel"


def test_the_environment_sets_the_default_and_a_bad_value_is_one_line(monkeypatch):
    monkeypatch.setattr(datapath, "module_loaded", lambda: True)
    monkeypatch.setenv("TUNNELWALL_DATAPATH", "user")
    assert datapath.resolve() == "user"
    assert datapath.resolve("auto") == "kernel"          # an explicit ask wins
    monkeypatch.setenv("TUNNELWALL_DATAPATH", "dpdk")
    with pytest.raises(TunnelwallError, match="^TUNNELWALL_DATAPATH=dpdk: choose one of auto, kernel, user$"):
        datapath.resolve()
    monkeypatch.delenv("TUNNELWALL_DATAPATH")
    assert datapath.resolve() == "kernel"


def test_auto_never_loads_a_module(monkeypatch):
    monkeypatch.setattr(datapath, "module_loaded", lambda: False)
    monkeypatch.setattr(datapath.subprocess, "run", lambda *a, **kw: pytest.fail("modprobe was run"))
    assert datapath.resolve("auto") == "user"


@pytest.mark.parametrize("kind, name", [("user", "netdev@ovs-netdev"), ("kernel", "system@ovs-system")])
def test_zone_is_flushed_in_the_runs_datapath_by_name(monkeypatch, kind, name):
    """With both datapaths on a machine (our userspace bridges beside the
    host's kernel ones), dpctl without a datapath name does not know which."""
    calls = []
    monkeypatch.setattr(cleanup, "_quiet", lambda argv: calls.append(argv) or subprocess.CompletedProcess(argv, 0))
    assert cleanup.flush_zone(28700, kind)
    assert calls == [["ovs-appctl", "--timeout=10", "dpctl/flush-conntrack", name, "zone=28700"]]


@pytest.mark.parametrize("nameless_works", [True, False])
def test_a_dpctl_that_refuses_the_name_is_asked_without_it(monkeypatch, nameless_works):
    """Open vSwitch 3.1: "field netdev@ovs-netdev missing value"."""
    calls = []

    def quiet(argv):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0 if nameless_works and len(argv) == 4 else 2)
    monkeypatch.setattr(cleanup, "_quiet", quiet)
    assert cleanup.flush_zone(28700, "user") is nameless_works
    assert calls == [["ovs-appctl", "--timeout=10", "dpctl/flush-conntrack", "netdev@ovs-netdev", "zone=28700"],
                     ["ovs-appctl", "--timeout=10", "dpctl/flush-conntrack", "zone=28700"]]


def test_datapaths_lists_the_kinds_present(monkeypatch):
    monkeypatch.setattr(cleanup, "_quiet", lambda argv: subprocess.CompletedProcess(
        argv, 0, "netdev@ovs-netdev\nsystem@ovs-system\n"))
    assert cleanup.datapaths() == ["kernel", "user"]
    monkeypatch.setattr(cleanup, "_quiet", lambda argv: subprocess.CompletedProcess(argv, 0, "netdev@ovs-netdev\n"))
    assert cleanup.datapaths() == ["user"]
