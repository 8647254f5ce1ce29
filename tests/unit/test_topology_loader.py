"""The topology loader: every catalogue file loads; every kind of bad YAML
fails with the exact file:line and a message naming the field."""

from pathlib import Path

import pytest

from tunnelwall import topologies
from tunnelwall.topologies import loader
from tunnelwall.topologies.model import Role
from tunnelwall.base.errors import SourceError, TunnelwallError

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad_topologies"

# fixture file -> (line, words the message must contain)
CASES = {
    "syntax_error.yaml": (4, "YAML syntax error"),
    "not_mapping.yaml": (1, "expected a mapping"),
    "missing_nodes.yaml": (1, "missing 'nodes'"),
    "unknown_top_key.yaml": (4, "unknown field 'linkz' (expected one of: censor, description, links, name, nodes)"),
    "unknown_role.yaml": (4, "nodes.c1.role: 'clinet' must be one of: client, router"),
    "unknown_node_field.yaml": (5, "unknown field 'adress'"),
    "bad_address.yaml": (3, "'10.0.0.300/24' is not an IPv4 address"),
    "address_without_prefix.yaml": (5, "needs a prefix length"),
    "link_unknown_node.yaml": (7, "unknown node 'r9'"),
    "link_conditions_between_switches.yaml": (8, "delay, loss and the like go on a link with a node at one end"),
    "bad_bandwidth.yaml": (7, "bandwidth 'fast'"),
    "duplicate_address.yaml": (6, "already used by c1:eth0"),
    "gateway_off_subnet.yaml": (6, "gateway 10.9.9.1 is not in any of its subnets"),
    "duplicate_key.yaml": (4, "duplicate key 'c1'"),
    "switch_name_too_long.yaml": (4, "at most 8 characters"),
    "censor_not_border.yaml": (3, "is not a node with role border-switch"),
    "interface_reused.yaml": (8, "already used by the link on line 7"),
    "unconnected_interface.yaml": (3, "interface eth1 is not connected"),
    "empty.yaml": (1, "the file is empty"),
    "traffic_on_server.yaml": (5, "traffic: only client nodes generate background traffic"),
    "traffic_bad_mix.yaml": (7, "nodes.c1.traffic.mix.1: 'ftp' must be one of: https, http, dns, quic"),
}


def test_every_fixture_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_topology_reports_file_and_line(name):
    line, words = CASES[name]
    path = BAD / name
    with pytest.raises(SourceError) as err:
        loader.load(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_link_error_names_the_link():
    with pytest.raises(SourceError, match=r"link_unknown_node.yaml:7: link 'r9-s1': unknown node 'r9'"):
        loader.load(BAD / "link_unknown_node.yaml")


def test_missing_file():
    with pytest.raises(SourceError, match="nope.yaml: file not found"):
        loader.load("nope.yaml")


@pytest.mark.parametrize("name", ["isp", "minimal", "classroom"])
def test_catalogue_loads(name):
    topo = topologies.resolve(name)
    assert topo.censor is not None
    assert topo.nodes[topo.censor.switch].role is Role.BORDER_SWITCH
    assert all(l.a.interface or topo.nodes[l.a.node].is_switch for l in topo.links)


def test_classroom_has_ten_students_shaped():
    topo = topologies.resolve("classroom")
    students = topo.by_role(Role.CLIENT)
    assert len(students) == 10
    assert all(l.bandwidth_mbit == 50 for l in topo.links if l.a.node.startswith("st"))


def test_interface_assigned_when_omitted():
    topo = loader.loads("""
nodes:
  h1: {role: host}
  h2: {role: host}
links:
  - endpoints: [h1, h2]
""")
    assert topo.links[0].a.interface == "eth0" and topo.links[0].b.interface == "eth0"


def test_generated_star():
    topo = topologies.resolve("star:50")
    assert len(topo.by_role(Role.CLIENT)) == 50


def test_unknown_topology_name():
    with pytest.raises(TunnelwallError, match="unknown topology 'nope'"):
        topologies.resolve("nope")


@pytest.mark.parametrize("text,mbit", [("100Mbit", 100), ("1Gbit", 1000), ("512kbit", 0.512), (10, 10),
                                       ("2.5mbit", 2.5), ("1MBps", 8)])
def test_bandwidth_parsing(text, mbit):
    assert loader.parse_bandwidth(text) == pytest.approx(mbit)


def test_graph_shows_every_node_link_address_and_the_censor():
    from tunnelwall.topologies import graph
    topo = topologies.resolve("isp")
    mermaid = graph.to_mermaid(topo)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    chained = {r for c in topo.chains for r in c.routers}
    assert chained == {"isp_h1", *(f"ix_h{k}" for k in range(1, 10))}
    for name in set(topo.nodes) - chained:
        assert sum(1 for line in lines if line.startswith(f"  {name}[") or line.startswith(f"  {name}([")) == 1, name
    # A chain of routers is one box, linked to its two ends; the links inside it are not drawn.
    assert not any(line.startswith(f"  {name}[") for name in chained for line in lines)
    assert '  ix_h1_chain[["9 router hops<br/>ix_h1 .. ix_h9<br/>198.18.0.1/24<br/>2001:db8:18::1/64"]]' in lines
    assert "  ix --- ix_h1_chain" in lines and "  ix_h1_chain --- dc" in lines
    inner = sum(1 for link in topo.links if link.a.node in chained and link.b.node in chained)
    assert inner == 8 and sum(1 for line in lines if " --- " in line) == len(topo.links) - inner
    assert "censor: gfw, inline" in mermaid and "2001:db8:18::10/64" in mermaid and "198.18.0.10/24" in mermaid
    assert lines[-1] == "  class border,censor,prober censor"
    dot = graph.to_dot(topologies.resolve("classroom"))
    assert dot.startswith('graph "classroom" {') and dot.rstrip().endswith("}")
    assert dot.count(" -- ") == len(topologies.resolve("classroom").links) - 8 and 'label="50 Mbit/s"' in dot
    assert '"ix_h1_chain" [label="9 router hops\\nix_h1 .. ix_h9\\n198.18.0.1/24\\n2001:db8:18::1/64", shape=box3d];' in dot


def test_a_name_made_from_the_file_name_is_checked_too(tmp_path):
    """The schema checks a given name; one made from the file's name is the loader's."""
    path = tmp_path / "1st.yaml"
    path.write_text("nodes:\n  c1: {role: client, ip: 10.0.0.1/24}\n  s1: {role: server, ip: 10.0.0.2/24}\n"
                    "links:\n  - endpoints: [c1, s1]\n")
    with pytest.raises(SourceError, match=r"1st.yaml:1: name: '1st' must be lowercase letters"):
        loader.load(path)
    (tmp_path / "first.yaml").write_text(path.read_text())
    assert loader.load(tmp_path / "first.yaml").name == "first"


def test_the_schema_knows_what_the_model_knows():
    """The schema is the only check of roles, services and traffic kinds: it must agree with the model."""
    from tunnelwall.base import yamlsrc
    from tunnelwall.topologies.model import KNOWN_SERVICES, ROLE_ALIASES, TRAFFIC_KINDS
    node = yamlsrc.load_schema(loader.SCHEMA)["$defs"]["node"]["properties"]
    assert set(node["role"]["enum"]) == {r.value for r in Role} | set(ROLE_ALIASES)
    assert tuple(node["services"]["items"]["enum"]) == KNOWN_SERVICES
    assert tuple(node["traffic"]["anyOf"][1]["properties"]["mix"]["items"]["enum"]) == TRAFFIC_KINDS
