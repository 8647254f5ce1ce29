"""Issue 2: each catalogue topology comes up, every pair of hosts reaches
each other (ping), TCP transfers cross it, and nothing is left after down."""

import itertools
import subprocess

import pytest
from conftest import assert_nothing_left, in_node, tw

from tunnelwall import topologies
from tunnelwall.base import kernel
from tunnelwall.base.runstate import active_run
from tunnelwall.topologies import datapath
from tunnelwall.topologies.model import Role


def addressed_hosts(topo):
    # The routers of link hops are left out: their transit addresses are
    # known only to their neighbours (they answer as the sources of ICMP
    # time exceeded; test_hops.py walks them).
    return {n.name: str(n.primary_ip()) for n in topo.hosts()
            if n.primary_ip() and n.role is not Role.MIDDLEBOX and topo.chain_of(n.name) is None}


@pytest.mark.parametrize("name", ["minimal", "isp", "classroom"])
def test_topology_up_reachability_tcp_down(name):
    topo = topologies.resolve(name)
    tw("up", name)
    try:
        hosts = addressed_hosts(topo)
        failures = []
        for src in hosts:
            # All of a host's pings at once, each to one destination.
            script = " & ".join(f"(ping -c1 -W2 {ip} >/dev/null || echo FAIL {dst})" for dst, ip in hosts.items()
                                if dst != src) + "; wait"
            out = in_node(src, script).stdout
            failures += [f"{src} -> {line.split()[1]}" for line in out.splitlines() if line.startswith("FAIL")]
        assert not failures, f"unreachable pairs: {failures}"
        pairs = len(list(itertools.combinations(hosts, 2)))
        assert pairs >= len(hosts) - 1 >= 1
        servers = [n.name for n in topo.hosts() if "http" in n.services]
        for src, server in itertools.product(hosts, servers):
            if src == server:
                continue
            res = in_node(src, f"curl -s -o /dev/null -w '%{{http_code}} %{{size_download}}' --max-time 20 "
                               f"http://{hosts[server]}/bytes/1000000")
            assert res.stdout == "200 1000000", f"TCP {src} -> {server}: {res.stdout} {res.stderr}"
    finally:
        tw("down")
    assert_nothing_left()


def test_no_censor_variant_and_inspect():
    tw("up", "isp", "--no-censor")
    state = active_run()
    try:
        # The backend finds every resource the run recorded, and after down none.
        status = topologies.backend_for(state).inspect()
        assert status.complete and len(status.present["netns"]) == len(state.nodes) and status.present["bridges"]
        res = tw("inspect", "--format", "json")
        import json
        data = json.loads(res.stdout)
        assert data["profile"] is None and set(data["layout"]["nodes"]) >= {"c1", "isp", "web"}
        # --datapath auto: the kernel's where its module is loaded, else userspace.
        kind = "kernel" if datapath.module_loaded() else "user"
        assert data["layout"]["datapath"] == kind
        for info in data["layout"]["switches"].values():
            dp_type = subprocess.run(["ovs-vsctl", "get", "bridge", info["bridge"], "datapath_type"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            assert dp_type == {"kernel": "system", "user": "netdev"}[kind]
        assert f"  datapath {kind}" in tw("inspect").stdout.splitlines()[0]
        assert in_node("c1", "ping -c1 -W2 198.18.0.10").returncode == 0
    finally:
        tw("down")
    assert topologies.backend_for(state).inspect().gone
    assert_nothing_left()


def test_second_up_is_refused_with_one_line():
    tw("up", "minimal", "--no-censor")
    try:
        res = tw("up", "minimal", check=False)
        assert res.returncode == 2 and "already up" in res.stderr and "Traceback" not in res.stderr
    finally:
        tw("down")
    assert_nothing_left()


@pytest.mark.skipif(kernel.module_available("openvswitch"), reason="this machine has the kernel datapath")
def test_kernel_datapath_asked_for_without_the_module_is_refused_with_one_line():
    res = tw("up", "minimal", "--no-censor", "--datapath", "kernel", check=False)
    assert res.returncode == 3, res.stderr
    assert res.stderr.count("\n") == 1 and "kernel module is not available" in res.stderr
    assert "--datapath user" in res.stderr and "Traceback" not in res.stderr
    assert active_run() is None
    assert_nothing_left()


def test_testbed_is_isolated_from_the_host_network():
    """No route out: a client reaches only topology addresses."""
    tw("up", "isp", "--no-censor")
    try:
        routes = in_node("c1", "ip -4 route").stdout
        assert "default via 10.0.0.1" in routes
        # The ISP router's default route points at its link hop (isp_h1),
        # whose default points at the exchange router, a topology node; the
        # exchange router's only routes are its subnets, its link to its own
        # hops (ix_h1) and the clients' network: anything else is unreachable.
        isp_routes = in_node("isp", "ip -4 route").stdout
        assert "default via 100.64.0.1 dev eth1 src 10.0.0.1" in isp_routes
        assert "default via 198.18.254.2 dev eth1" in in_node("isp_h1", "ip -4 route").stdout
        ix_routes = in_node("ix", "ip -4 route").stdout.strip().splitlines()
        assert sorted(r.split()[0] for r in ix_routes) == ["10.0.0.0/8", "100.64.1.0/31", "198.18.0.0/24",
                                                            "198.18.254.0/24"], ix_routes
        ix6 = in_node("ix", "ip -6 route").stdout
        assert "default" not in ix6 and "fd00::/8 via 2001:db8:18:254::1" in ix6
        # Addresses outside the topology (TEST-NET-3 and an unused documentation
        # prefix, never routed) are unreachable from the client.
        assert in_node("c1", "ping -c1 -W1 203.0.113.1").returncode != 0
        assert in_node("c1", "ping -6 -c1 -W1 2001:db8:ffff::1").returncode != 0
        # No interface of any node is in the host's namespace or bridged to a host interface.
        import subprocess
        bridges = subprocess.run(["ovs-vsctl", "list-ports", "tw-border"], capture_output=True, text=True).stdout.split()
        assert all(p.startswith("tw-border-") for p in bridges), bridges
    finally:
        tw("down")
    assert_nothing_left()
