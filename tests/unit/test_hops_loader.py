"""Router hops on a link (``hops: N``, issue 33 item 1): the loader chains N
forwarding routers behind a router's interface, with transit addresses and
static routes, so every written route still works; the layout, ``inspect``
and ``graph`` carry the count."""

import ipaddress

import pytest

from tunnelwall import topologies
from tunnelwall.base.errors import SourceError
from tunnelwall.base.layout import Layout
from tunnelwall.topologies import loader
from tunnelwall.topologies.layout import plan_layout
from tunnelwall.topologies.model import Role, Route

I4, I6, A = ipaddress.IPv4Interface, ipaddress.IPv6Interface, ipaddress.ip_address

# Three routers between r (the written router) and the servers' switch,
# r's default route on the far side's opposite (it has none), dual stack.
TWO_SIDES = """\
name: t
nodes:
  c1: {role: client, ip: 10.0.0.11/24, gateway: 10.0.0.1, ip6: "fd00::11/64", gateway6: "fd00::1"}
  r:
    role: router
    interfaces: {eth0: 10.0.0.1/24, eth1: 198.18.0.1/24}
    interfaces6: {eth0: "fd00::1/64", eth1: "2001:db8:18::1/64"}
    routes:
      - {to: 198.18.5.0/24, via: 198.18.0.254}
  dc: {role: switch}
  web: {role: server, ip: 198.18.0.10/24, gateway: 198.18.0.1, ip6: "2001:db8:18::10/64", gateway6: "2001:db8:18::1"}
links:
  - endpoints: ["c1:eth0", "r:eth0"]
  - {endpoints: ["r:eth1", "dc"], hops: 3, bandwidth: 10Mbit}
  - endpoints: ["web:eth0", "dc"]
"""


def routes(node):
    return {(str(r.to), str(r.via)) for r in node.routes}


def test_a_chain_of_routers_takes_the_link_and_the_far_side_keeps_its_gateway():
    topo = loader.loads(TWO_SIDES)
    chain, = topo.chains
    assert chain.routers == ("r_h1", "r_h2", "r_h3") and chain.count == 3
    assert (str(chain.near), str(chain.far)) == ("r:eth1", "dc")
    assert [(str(l.a), str(l.b)) for l in topo.links] == [
        ("c1:eth0", "r:eth0"), ("r:eth1", "r_h1:eth0"), ("r_h1:eth1", "r_h2:eth0"), ("r_h2:eth1", "r_h3:eth0"),
        ("r_h3:eth1", "dc"), ("web:eth0", "dc")]
    # The written link's rate stays where the far end meets the chain.
    assert [l.bandwidth_mbit for l in topo.links] == [None, None, None, None, 10, None]
    # New nodes come after the written ones: no written node's index (MACs) moves.
    assert list(topo.nodes)[-3:] == ["r_h1", "r_h2", "r_h3"]
    assert all(topo.nodes[n].role is Role.ROUTER for n in chain.routers)
    assert topo.chain_of("r_h2") is chain and topo.chain_of("r") is None


def test_transit_addresses_and_routes_of_a_stub_far_side():
    topo = loader.loads(TWO_SIDES)
    r, h1, h2, h3 = (topo.nodes[n] for n in ("r", "r_h1", "r_h2", "r_h3"))
    # The written router's interface gets the first /31; the last router takes its addresses.
    assert r.interfaces["eth1"] == I4("100.64.0.0/31") and r.interfaces6["eth1"] == I6("2001:db8:7477::1/64")
    assert h1.interfaces == {"eth0": I4("100.64.0.1/31"), "eth1": I4("100.64.0.2/31")}
    assert h2.interfaces == {"eth0": I4("100.64.0.3/31"), "eth1": I4("100.64.0.4/31")}
    assert h3.interfaces == {"eth0": I4("100.64.0.5/31"), "eth1": I4("198.18.0.1/24")}
    assert h3.interfaces6 == {"eth0": I6("2001:db8:7477:2::2/64"), "eth1": I6("2001:db8:18::1/64")}
    # r reaches the far subnet, and what it routed via it, through the chain.
    assert routes(r) == {("198.18.5.0/24", "100.64.0.1"), ("198.18.0.0/24", "100.64.0.1"),
                         ("2001:db8:18::/64", "2001:db8:7477::2")}
    # ... from its address on the near side, which the far side can answer (not the transit /31).
    assert {str(rt.src) for rt in r.routes} == {"10.0.0.1", "fd00::1"}
    assert r.gateway is None and r.gateway6 is None
    # Every router: back towards r by default, the far side ahead.
    assert (h1.gateway, h2.gateway, h3.gateway) == (A("100.64.0.0"), A("100.64.0.2"), A("100.64.0.4"))
    assert h1.gateway6 == A("2001:db8:7477::1")
    assert routes(h1) == {("198.18.0.0/24", "100.64.0.3"), ("198.18.5.0/24", "100.64.0.3"),
                          ("2001:db8:18::/64", "2001:db8:7477:1::2")}
    # The last router has the far subnet on its wire and keeps r's route via it as written.
    assert routes(h3) == {("198.18.5.0/24", "198.18.0.254")}
    web = topo.nodes["web"]
    assert web.gateway == A("198.18.0.1") and web.interfaces["eth0"] == I4("198.18.0.10/24")


def test_a_chain_towards_the_default_route_routes_the_near_networks_back():
    """isp.yaml's isp_h1: the ISP router's default route leads across the link."""
    topo = topologies.resolve("isp")
    isp, h1 = topo.nodes["isp"], topo.nodes["isp_h1"]
    assert isp.gateway == A("100.64.0.1") and isp.gateway6 == A("2001:db8:7477::2")
    assert isp.gateway_src == A("10.0.0.1") and isp.gateway6_src == A("fd00:0:0:1::1")
    ix = topo.nodes["ix"]
    assert Route(ipaddress.ip_network("198.18.0.0/24"), A("100.64.1.1"), A("198.18.254.2")) in ix.routes
    assert h1.interfaces["eth1"] == I4("198.18.254.1/24")
    assert h1.gateway == A("198.18.254.2") and h1.gateway6 == A("2001:db8:18:254::2")     # ix, as isp's was
    assert routes(h1) == {("10.0.0.0/24", "100.64.0.0"), ("fd00:0:0:1::/64", "2001:db8:7477::1")}
    # ix's route to the clients still goes via 198.18.254.1, now isp_h1's.
    assert ("10.0.0.0/8", "198.18.254.1") in routes(topo.nodes["ix"])


@pytest.mark.parametrize("name", ["isp", "classroom", "faraway"])
def test_the_catalogue_puts_servers_ten_routers_past_the_border_and_clients_two_before(name):
    topo = topologies.resolve(name)
    before, after = topo.chains
    assert (str(before.near), str(before.far), before.count) == ("isp:eth1", "border", 1)
    assert (str(after.near), str(after.far), after.count) == ("ix:eth1", "dc", 9)
    # Walk the default routes from a client to the server's subnet: every router on the way.
    client = topo.by_role(Role.CLIENT)[0]
    path, hop, seen = [], client.gateway, set()
    target = ipaddress.ip_address("198.18.0.10")
    while hop is not None and len(path) < 30:
        router = next(n for n in topo.hosts() if any(a is not None and a.ip == hop for a in n.interfaces.values()))
        path.append(router.name)
        if any(a is not None and target in a.network for a in router.interfaces.values()):
            break
        hop = next((r.via for r in router.routes if target in r.to), router.gateway)
    assert path == ["isp", "isp_h1", "ix", *(f"ix_h{k}" for k in range(1, 10))]


def test_the_layout_carries_the_hops_and_reads_back():
    layout = plan_layout(topologies.resolve("isp"))
    assert [(h.near, h.far, h.count) for h in layout.hops] == [("isp:eth1", "border", 1), ("ix:eth1", "dc", 9)]
    assert layout.hops_of("ix_h4").near == "ix:eth1" and layout.hops_of("web") is None
    assert layout.nodes["ix_h4"].netns == "tw-ix_h4" and layout.nodes["ix_h9"].interfaces["eth1"].peer == "dc"
    again = Layout.from_json(layout.to_json())
    assert again.hops == layout.hops
    # Without hops the JSON form is the one it always was.
    assert "hops" not in plan_layout(topologies.resolve("minimal")).to_json()


def test_a_router_with_hops_on_two_interfaces_names_its_chains_by_interface():
    text = TWO_SIDES.replace('  - endpoints: ["c1:eth0", "r:eth0"]', '  - {endpoints: ["c1:eth0", "r:eth0"], hops: 2}')
    topo = loader.loads(text)
    assert [c.routers for c in topo.chains] == [("r_eth0_h1", "r_eth0_h2"), ("r_eth1_h1", "r_eth1_h2", "r_eth1_h3")]
    # The second chain takes the next block of transit addresses.
    assert topo.nodes["r"].interfaces["eth1"] == I4("100.64.1.0/31")
    assert topo.nodes["r_eth0_h2"].interfaces["eth1"] == I4("10.0.0.1/24")
    assert topo.nodes["c1"].gateway == A("10.0.0.1")


@pytest.mark.parametrize("edit,line,words", [
    # no router at either end
    (('  - endpoints: ["web:eth0", "dc"]', '  - {endpoints: ["web:eth0", "dc"], hops: 2}'), 15,
     "hops: one end must be a router's interface with an IPv4 address"),
    # a written node named like a chain router
    (("  dc: {role: switch}", "  dc: {role: switch}\n  r_h2: {role: host, ip: 10.0.0.50/24}\n"
      "  lan2: {role: switch}"), 16, "the chain's router 'r_h2' would have the name of a written node"),
])
def test_bad_hops_fail_with_file_line(edit, line, words):
    text = TWO_SIDES.replace(*edit)
    if edit[0].startswith("  dc:"):
        text += '  - endpoints: ["r_h2:eth0", "lan2"]\n'
    with pytest.raises(SourceError) as err:
        loader.loads(text, "t.yaml")
    assert words in str(err.value) and f"t.yaml:{line}:" in str(err.value)


def test_the_transit_pool_in_use_is_refused():
    text = TWO_SIDES.replace("  dc: {role: switch}", "  dc: {role: switch}\n  x: {role: host, ip: 100.64.3.1/24}") \
        + '  - endpoints: ["x:eth0", "dc"]\n'
    with pytest.raises(SourceError, match=r"t.yaml:15: hops: the chained routers' transit addresses come from "
                                          r"100.64.0.0/16, which node 'x' uses \(100.64.3.1/24\)"):
        loader.loads(text, "t.yaml")


@pytest.mark.parametrize("value", [0, 65, "three"])
def test_the_schema_bounds_hops(value):
    text = TWO_SIDES.replace("hops: 3", f"hops: {value}")
    with pytest.raises(SourceError, match=r"t.yaml:14: .*hops"):
        loader.loads(text, "t.yaml")
