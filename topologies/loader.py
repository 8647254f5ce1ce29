"""Topology YAML -> validated :class:`~topologies.model.Topology`.

Parser -> model: every check happens here, before anything touches the
kernel, and every error names file, line and the field at fault::

    topologies/x.yaml:12: link 'c1-lan': unknown node 'r9'

The schema (``topologies/schema.json``) is the only check of the structure:
keys, types, enums and ranges. This module checks only what a schema cannot
say: names, addresses and subnets, references between nodes and links,
which fields go with which role.

The format (see ``isp.yaml``)::

    name: isp
    censor: {switch: border, middlebox: censor, profile: gfw, placement: tap}
    nodes:
      c1:  {role: client, ip: 10.0.0.11/24, gateway: 10.0.0.1}
      isp: {role: router, interfaces: {eth0: 10.0.0.1/24, eth1: 198.18.0.1/24}}
      lan: {role: switch}
    links:
      - endpoints: ["c1:eth0", "lan"]
        bandwidth: 100Mbit
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import SourceError
from tunnelwall.base.units import parse_bandwidth

from .model import (ROLE_ALIASES, TRAFFIC_KINDS, CensorSite, Endpoint, HopChain, Link, LinkConditions, Node, Role,
                    Route, Topology, Traffic)

SCHEMA = Path(__file__).resolve().parent / "schema.json"
CONDITION_KEYS = {"delay", "jitter", "jitter_distribution", "loss", "loss_burst", "duplicate", "corrupt", "reorder",
                  "from_node", "to_node"}
# Linux interface names are at most 15 bytes; a switch's ports are named
# "tw-<switch>-<n>" in the root namespace, which leaves 8 for the switch name.
MAX_SWITCH_NAME = 8
MAX_NODE_NAME = 24
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
IFACE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
NETEM_KEYS = {"delay", "loss", "jitter", "corrupt", "duplicate", "reorder", "loss_burst", "jitter_distribution"}


class _Ctx:
    def __init__(self, path: str):
        self.path = path

    def fail(self, line: int | None, message: str) -> SourceError:
        return SourceError(self.path, line, message)


def load(path: str | Path) -> Topology:
    """Load and validate a topology file."""
    path = str(path)
    data = yamlsrc.load(path)
    return from_data(data, path)


def loads(text: str, path: str = "<string>") -> Topology:
    return from_data(yamlsrc.load(path, text), path)


def from_data(data: Any, path: str) -> Topology:
    ctx = _Ctx(path)
    yamlsrc.validate(data, yamlsrc.load_schema(SCHEMA), path)
    default_name = re.sub(r"[^a-z0-9_-]", "", Path(path).stem.lower()) or "topology"
    name = data.get("name", default_name)
    if not NAME_RE.match(name.replace("-", "_")):
        # Only a name made from the file's (the schema checks a given one).
        raise ctx.fail(data.line_of("name"), f"name: '{name}' must be lowercase letters, digits, '-' or '_'")
    nodes_data = data["nodes"]
    nodes = {}
    for node_name, spec in nodes_data.items():
        nodes[node_name] = _node(ctx, nodes_data, node_name, spec)
    links_data = data.get("links", yamlsrc.Sequence())
    links = [_link(ctx, links_data, i, nodes) for i in range(len(links_data))]
    _assign_interfaces(ctx, nodes, links)
    links, chains = _expand_hops(ctx, nodes, links)
    censor = _censor(ctx, data, nodes, links) if "censor" in data else None
    topo = Topology(name=name, nodes=nodes, links=links, description=str(data.get("description", "")),
                    censor=censor, source=path, chains=chains)
    _check_addressing(ctx, topo)
    return topo


def _node(ctx: _Ctx, parent: yamlsrc.Mapping, name: Any, spec: Any) -> Node:
    line = parent.line_of(name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ctx.fail(line, f"node '{name}': names are lowercase letters, digits and '_', starting with a letter")
    if len(name) > MAX_NODE_NAME:
        raise ctx.fail(line, f"node '{name}': name longer than {MAX_NODE_NAME} characters")
    for key in spec:
        if key in NETEM_KEYS:       # the schema lets them through for this message
            raise ctx.fail(spec.line_of(key), f"node '{name}': '{key}' belongs on a link")
    role = ROLE_ALIASES.get(spec["role"]) or Role(spec["role"])
    node = Node(name=name, role=role, line=line, field_lines=dict(spec.key_lines))
    if role.is_switch:
        if len(name) > MAX_SWITCH_NAME:
            raise ctx.fail(line, f"node '{name}': switch names are at most {MAX_SWITCH_NAME} characters (Linux interface names are limited to 15 bytes)")
        for key in ("ip", "interfaces", "gateway", "ip6", "interfaces6", "gateway6", "routes", "services", "image",
                    "traffic"):
            if key in spec:
                raise ctx.fail(spec.line_of(key), f"node '{name}': a {role.value} has no '{key}' (switches work at layer 2)")
        return node
    if "ip" in spec and "interfaces" in spec:
        raise ctx.fail(spec.line_of("ip"), f"node '{name}': give either 'ip' (shorthand for eth0) or 'interfaces', not both")
    if "ip" in spec:
        node.interfaces["eth0"] = _iface_addr(ctx, spec.line_of("ip"), name, "ip", spec["ip"])
    if "interfaces" in spec:
        ifaces = spec["interfaces"]
        for ifname, addr in ifaces.items():
            if not isinstance(ifname, str) or not IFACE_RE.match(ifname):
                raise ctx.fail(ifaces.line_of(ifname), f"node '{name}': bad interface name '{ifname}' (e.g. eth0)")
            node.interfaces[ifname] = None if addr is None else _iface_addr(ctx, ifaces.line_of(ifname), name, f"interfaces.{ifname}", addr)
    if "ip6" in spec and "interfaces6" in spec:
        raise ctx.fail(spec.line_of("ip6"), f"node '{name}': give either 'ip6' (shorthand for eth0) or 'interfaces6', not both")
    if "ip6" in spec:
        node.interfaces6["eth0"] = _iface_addr(ctx, spec.line_of("ip6"), name, "ip6", spec["ip6"], 6)
    if "interfaces6" in spec:
        ifaces = spec["interfaces6"]
        for ifname, addr in ifaces.items():
            if ifname not in node.interfaces:
                raise ctx.fail(ifaces.line_of(ifname), f"node '{name}': interfaces6.{ifname}: no such interface under 'interfaces'")
            node.interfaces6[ifname] = _iface_addr(ctx, ifaces.line_of(ifname), name, f"interfaces6.{ifname}", addr, 6)
    if node.interfaces6 and not node.interfaces:
        raise ctx.fail(node.line, f"node '{name}': IPv6 addresses go with IPv4 ones (dual stack): give 'ip' too")
    if "gateway" in spec:
        node.gateway = _address(ctx, spec.line_of("gateway"), name, "gateway", spec["gateway"])
    if "gateway6" in spec:
        node.gateway6 = _address(ctx, spec.line_of("gateway6"), name, "gateway6", spec["gateway6"], 6)
    if "routes" in spec:
        node.routes = _routes(ctx, spec, name)
    if "services" in spec:
        node.services = list(spec["services"])
    if "traffic" in spec:
        node.traffic = _traffic(ctx, spec, name, role)
    if "image" in spec:
        if role in (Role.MIDDLEBOX, Role.PROBER):
            raise ctx.fail(spec.line_of("image"), f"node '{name}': the censor's own nodes run tunnelwall itself, not an image")
        if not spec["image"]:
            raise ctx.fail(spec.line_of("image"), f"node '{name}': image must be an image name, e.g. tunnelwall/base")
        node.image = spec["image"]
    return node


def _iface_addr(ctx: _Ctx, line: int, node: str, field: str, value: Any, version: int = 4):
    text = str(value)
    if "/" not in text:
        raise ctx.fail(line, f"node '{node}': {field}: '{text}' needs a prefix length, e.g. {text}/{24 if version == 4 else 64}")
    try:
        addr = (ipaddress.IPv4Interface if version == 4 else ipaddress.IPv6Interface)(text)
    except ValueError:
        example = "10.0.0.1/24" if version == 4 else "fd00::1/64"
        raise ctx.fail(line, f"node '{node}': {field}: '{text}' is not an IPv{version} address with prefix (e.g. {example})") from None
    if version == 6:
        if addr.ip.is_link_local or addr.ip.is_multicast or addr.ip == addr.network.network_address:
            raise ctx.fail(line, f"node '{node}': {field}: {addr.ip} cannot be an interface's address here")
        return addr
    if addr.ip == addr.network.network_address or addr.ip == addr.network.broadcast_address:
        if addr.network.prefixlen < 31:
            raise ctx.fail(line, f"node '{node}': {field}: {addr.ip} is the network or broadcast address of {addr.network}")
    return addr


def _address(ctx: _Ctx, line: int, node: str, field: str, value: Any, version: int = 4):
    try:
        return (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(str(value))
    except ValueError:
        raise ctx.fail(line, f"node '{node}': {field}: '{value}' is not an IPv{version} address") from None


def _routes(ctx: _Ctx, spec: yamlsrc.Mapping, node: str) -> list[Route]:
    out = []
    for route in spec["routes"]:
        try:
            net = ipaddress.ip_network(str(route["to"]))
        except ValueError:
            raise ctx.fail(route.line_of("to"), f"node '{node}': route to '{route['to']}' is not an IP network") from None
        out.append(Route(net, _address(ctx, route.line_of("via"), node, "route via", route["via"], net.version)))
    return out


def _endpoint(ctx: _Ctx, line: int, link_name: str, text: Any, nodes: dict[str, Node]) -> Endpoint:
    if text.count(":") > 1 or not text:
        raise ctx.fail(line, f"link {link_name}: endpoint '{text}' must be 'node' or 'node:interface'")
    node_name, _, iface = text.partition(":")
    if node_name not in nodes:
        raise ctx.fail(line, f"link {link_name}: unknown node '{node_name}'")
    node = nodes[node_name]
    if node.is_switch:
        if iface:
            raise ctx.fail(line, f"link {link_name}: '{text}': switch ports are numbered automatically; write just '{node_name}'")
        return Endpoint(node_name, None)
    if iface and not IFACE_RE.match(iface):
        raise ctx.fail(line, f"link {link_name}: bad interface name '{iface}'")
    return Endpoint(node_name, iface or None)


def _link(ctx: _Ctx, links: yamlsrc.Sequence, index: int, nodes: dict[str, Node]) -> Link:
    spec = links[index]
    line = links.line_of(index)
    eps = spec["endpoints"]
    shown = f"'{eps[0].split(':')[0]}-{eps[1].split(':')[0]}'"
    a = _endpoint(ctx, eps.line_of(0), shown, eps[0], nodes)
    b = _endpoint(ctx, eps.line_of(1), shown, eps[1], nodes)
    if a.node == b.node:
        raise ctx.fail(line, f"link {shown}: both endpoints are on node '{a.node}'")
    if nodes[a.node].is_switch and nodes[b.node].is_switch:
        if Role.BORDER_SWITCH in (nodes[a.node].role, nodes[b.node].role):
            raise ctx.fail(line, f"link {shown}: connect the border switch to routers or hosts, not to another switch (its forwarding table is built from its neighbours' addresses)")
    bandwidth = None
    if "bandwidth" in spec:
        try:
            bandwidth = parse_bandwidth(spec["bandwidth"])
        except ValueError:
            raise ctx.fail(spec.line_of("bandwidth"), f"link {shown}: bandwidth '{spec['bandwidth']}' is not a rate like 100Mbit, 1Gbit or 512kbit") from None
    conditions = _conditions(ctx, spec, shown) if CONDITION_KEYS & set(spec) else None
    if conditions is not None and nodes[a.node].is_switch and nodes[b.node].is_switch:
        raise ctx.fail(line, f"link {shown}: delay, loss and the like go on a link with a node at one end "
                             f"(the conditions are applied at that node's interface)")
    link = Link(a, b, bandwidth, line, conditions)
    if "hops" in spec:
        link.hops = int(spec["hops"])     # the schema says 1..64
    return link


DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s)?\s*$")
PERCENT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def _milliseconds(ctx: _Ctx, spec, key: str, shown: str) -> float:
    value = spec[key]
    m = None if isinstance(value, bool) else DURATION_RE.match(str(value))
    if m is None:
        raise ctx.fail(spec.line_of(key), f"link {shown}: {key} '{value}' is not a duration like 50ms, 0.2s or 20 (ms)")
    number = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}[m.group(2)]
    if number > 10_000:
        raise ctx.fail(spec.line_of(key), f"link {shown}: {key} {value} is longer than 10 s")
    return number


def _probability(ctx: _Ctx, where, key: str, shown: str, value=None) -> float:
    value = where[key] if value is None else value
    m = None if isinstance(value, bool) else PERCENT_RE.match(str(value))
    if m is not None:
        p = float(m.group(1)) / 100
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        p = float(value)
    else:
        p = -1.0
    if not 0 <= p <= 1:
        raise ctx.fail(where.line_of(key), f"link {shown}: {key} '{value}' is not a probability like 1% or 0.01")
    return p


def _conditions(ctx: _Ctx, spec, shown: str, nested: bool = False) -> LinkConditions:
    fields = {}
    for side in ("from_node", "to_node"):
        if side in spec:
            sub_spec = spec[side]      # the schema checks only that it is a mapping
            if nested or not isinstance(sub_spec, yamlsrc.Mapping) or not sub_spec \
                    or set(sub_spec) - (CONDITION_KEYS - {"from_node", "to_node"}):
                raise ctx.fail(spec.line_of(side), f"link {shown}: {side} is a mapping of conditions for one "
                                                   f"direction (delay, jitter, loss, ...), not nested")
            fields[side] = _conditions(ctx, sub_spec, shown, nested=True)
    for key in ("delay", "jitter"):
        if key in spec:
            fields[f"{key}_ms"] = _milliseconds(ctx, spec, key, shown)
    if "jitter_distribution" in spec:
        if spec["jitter_distribution"] not in ("uniform", "normal"):
            raise ctx.fail(spec.line_of("jitter_distribution"), f"link {shown}: jitter_distribution is uniform or normal")
        fields["jitter_distribution"] = spec["jitter_distribution"]
    for key in ("loss", "duplicate", "corrupt", "reorder"):
        if key in spec:
            fields[key] = _probability(ctx, spec, key, shown)
    if "loss_burst" in spec:
        burst = spec["loss_burst"]
        if not isinstance(burst, yamlsrc.Mapping) or set(burst) != {"p", "r"}:
            raise ctx.fail(spec.line_of("loss_burst"), f"link {shown}: loss_burst is {{p: GOOD_TO_BAD, r: BAD_TO_GOOD}} "
                                                      f"(Gilbert-Elliott), e.g. {{p: 1%, r: 25%}}")
        fields["loss_burst"] = (_probability(ctx, burst, "p", shown), _probability(ctx, burst, "r", shown))
    if fields.get("jitter_ms", 0) > fields.get("delay_ms", 0):
        raise ctx.fail(spec.line_of("jitter"), f"link {shown}: jitter is larger than the delay")
    return LinkConditions(**fields)


def _assign_interfaces(ctx: _Ctx, nodes: dict[str, Node], links: list[Link]) -> None:
    """Give host endpoints without an interface name the next free ethN, and
    check that each host interface is used by exactly one link."""
    used: dict[tuple[str, str], int] = {}
    for link in links:
        for side in ("a", "b"):
            ep = getattr(link, side)
            node = nodes[ep.node]
            if node.is_switch:
                continue
            iface = ep.interface
            if iface is None:
                free = [i for i in node.interfaces if (node.name, i) not in used]
                if free:
                    iface = free[0]
                else:
                    n = 0
                    while (node.name, f"eth{n}") in used or f"eth{n}" in node.interfaces:
                        n += 1
                    iface = f"eth{n}"
                setattr(link, side, Endpoint(ep.node, iface))
            if (node.name, iface) in used:
                raise ctx.fail(link.line, f"link '{link.name}': interface {node.name}:{iface} is already used by the link on line {used[(node.name, iface)]}")
            used[(node.name, iface)] = link.line
            node.interfaces.setdefault(iface, None)
    for node in nodes.values():
        for iface in node.interfaces:
            if (node.name, iface) not in used:
                raise ctx.fail(node.line, f"node '{node.name}': interface {iface} is not connected by any link")


def _censor(ctx: _Ctx, data: yamlsrc.Mapping, nodes: dict[str, Node], links: list[Link]) -> CensorSite:
    spec = data["censor"]
    switch, middlebox = spec["switch"], spec["middlebox"]
    if switch not in nodes or nodes[switch].role is not Role.BORDER_SWITCH:
        raise ctx.fail(spec.line_of("switch"), f"censor.switch: '{switch}' is not a node with role border-switch")
    if middlebox not in nodes or nodes[middlebox].role is not Role.MIDDLEBOX:
        raise ctx.fail(spec.line_of("middlebox"), f"censor.middlebox: '{middlebox}' is not a node with role middlebox")
    mb_links = [l for l in links if middlebox in (l.a.node, l.b.node)]
    if len(mb_links) != 1 or switch not in (mb_links[0].a.node, mb_links[0].b.node):
        raise ctx.fail(spec.line_of("middlebox"), f"censor.middlebox: '{middlebox}' must have exactly one link, to '{switch}'")
    placement = spec.get("placement", "tap")
    prober = spec.get("prober")
    if prober is not None and (prober not in nodes or nodes[prober].role is not Role.PROBER):
        raise ctx.fail(spec.line_of("prober"), f"censor.prober: '{prober}' is not a node with role prober")
    profile = spec.get("profile", "log-only")
    return CensorSite(switch=switch, middlebox=middlebox, profile=profile, placement=placement, prober=prober)


def _check_addressing(ctx: _Ctx, topo: Topology) -> None:
    seen: dict[str, str] = {}
    for node in topo.hosts():
        for field_name, table in (("ip", node.interfaces), ("ip6", node.interfaces6)):
            for iface, addr in table.items():
                if addr is None:
                    continue
                key = str(addr.ip)
                if key in seen:
                    where = node.field_lines.get(field_name, node.field_lines.get(
                        "interfaces" if field_name == "ip" else "interfaces6", node.line))
                    raise ctx.fail(where, f"node '{node.name}': address {addr.ip} on {iface} is already used by {seen[key]}")
                seen[key] = f"{node.name}:{iface}"
        nets = [a.network for a in node.addresses()] + [a.network for a in node.interfaces6.values()]
        for gw_field, gw in (("gateway", node.gateway), ("gateway6", node.gateway6)):
            if gw is not None and not any(gw.version == n.version and gw in n for n in nets):
                raise ctx.fail(node.field_lines.get(gw_field, node.line), f"node '{node.name}': {gw_field} {gw} is not in any of its subnets ({', '.join(map(str, nets)) or 'none'})")
        for route in node.routes:
            if not any(route.via.version == n.version and route.via in n for n in nets):
                raise ctx.fail(node.field_lines.get("routes", node.line), f"node '{node.name}': route to {route.to} via {route.via}: {route.via} is not in any of its subnets")
        if node.role is Role.MIDDLEBOX and node.addresses():
            raise ctx.fail(node.line, f"node '{node.name}': the middlebox sniffs its port and needs no address")


def _traffic(ctx, spec, name: str, role) -> Traffic:
    """``traffic: {mix: [https, http, dns], per_minute: 30}`` on a client node."""
    line = spec.line_of("traffic")
    if role is not Role.CLIENT:
        raise ctx.fail(line, f"node '{name}': traffic: only client nodes generate background traffic")
    value = spec["traffic"]
    if value is True:
        return Traffic()
    return Traffic(mix=tuple(value.get("mix", TRAFFIC_KINDS)), per_minute=float(value.get("per_minute", 30)))


# Router hops (a link's ``hops: N``). The transit links between the chained
# routers are point-to-point: IPv4 /31s (RFC 3021) from the shared address
# space (RFC 6598, an ISP's own, never a customer's or a server's) and IPv6
# /64s from the documentation prefix with "tw" (0x7477) in it (RFC 3849).
TRANSIT4 = ipaddress.IPv4Network("100.64.0.0/16")
TRANSIT6 = ipaddress.IPv6Network("2001:db8:7477::/48")


def _transit(chain: int, link: int) -> tuple[tuple, tuple]:
    """The (near, far) IPv4 and IPv6 interface addresses of transit link
    *link* of chain *chain* (both counted from 0 in link order)."""
    base4 = int(TRANSIT4.network_address) + chain * 256 + 2 * link
    net6 = int(TRANSIT6.network_address) + ((chain * 256 + link) << 64)
    v4 = tuple(ipaddress.IPv4Interface((base4 + i, 31)) for i in (0, 1))
    v6 = tuple(ipaddress.IPv6Interface((net6 + i, 64)) for i in (1, 2))
    return v4, v6


def _expand_hops(ctx: _Ctx, nodes: dict[str, Node], links: list[Link]) -> tuple[list[Link], list[HopChain]]:
    """Replace every link with ``hops: N`` by a chain of N forwarding
    routers, with addresses and static routes, so that the rest of the
    topology needs no change:

    * the chain stands behind the link's first end that is a router's
      interface with an address (X:IF); the last router takes over X:IF's
      addresses, so the nodes on the far side keep their gateways;
    * X:IF and the routers between get transit addresses; X reaches the far
      side (IF's subnet, and its routes via that subnet) through the chain;
    * each router sends towards the far side what X sent there, and the
      rest back towards X; when X's default route led to the far side the
      chain's does too, with X's other networks routed back.

    Routers are named X_hK (X_IF_hK when X has hops on several interfaces),
    so they are ordinary nodes: namespaces the run state records and
    ``tunnelwall cleanup`` removes. New nodes go after the written ones, so
    no written node's index (and MACs) changes."""
    hop_links = [link for link in links if link.hops]
    if not hop_links:
        return links, []
    _check_transit_free(ctx, nodes, hop_links[0].line)
    per_router = {}
    for link in hop_links:
        near = next((ep for ep in (link.a, link.b) if nodes[ep.node].role is Role.ROUTER
                     and nodes[ep.node].interfaces.get(ep.interface) is not None), None)
        if near is None:
            raise ctx.fail(link.line, f"link '{link.name}': hops: one end must be a router's interface with an IPv4 "
                                      f"address (the chain of routers stands behind it and takes over its address)")
        per_router[near.node] = per_router.get(near.node, 0) + 1
    out, chains = [], []
    for link in links:
        if not link.hops:
            out.append(link)
            continue
        near = next(ep for ep in (link.a, link.b) if nodes[ep.node].role is Role.ROUTER
                    and nodes[ep.node].interfaces.get(ep.interface) is not None)
        far = link.b if near is link.a else link.a
        stem = near.node if per_router[near.node] == 1 else f"{near.node}_{near.interface}"
        names = tuple(f"{stem}_h{k}" for k in range(1, link.hops + 1))
        for name in names:
            if name in nodes:
                raise ctx.fail(link.line, f"link '{link.name}': hops: the chain's router '{name}' would have the "
                                          f"name of a written node; rename that node")
            if len(name) > MAX_NODE_NAME:
                raise ctx.fail(link.line, f"link '{link.name}': hops: the chain's router names ({name}) would be "
                                          f"longer than {MAX_NODE_NAME} characters; shorten the node's name")
        index = len(chains)
        for name in names:
            nodes[name] = Node(name=name, role=Role.ROUTER, line=link.line)
        _chain_family(nodes, near, names, index, 4)
        if near.interface in nodes[near.node].interfaces6:
            _chain_family(nodes, near, names, index, 6)
        # near - h1:eth0, h1:eth1 - h2:eth0, ..., hN:eth1 - far
        flat = [near, *(Endpoint(n, iface) for n in names for iface in ("eth0", "eth1")), far]
        segments = [Link(flat[i], flat[i + 1], line=link.line) for i in range(0, len(flat), 2)]
        # The written link's rate and conditions stay on its far segment,
        # where the far end (a switch or host) meets the chain.
        segments[-1].bandwidth_mbit, segments[-1].conditions = link.bandwidth_mbit, link.conditions
        out += segments
        chains.append(HopChain(near=near, far=far, routers=names, line=link.line))
    return out, chains


def _chain_family(nodes: dict[str, Node], near: Endpoint, names: tuple[str, ...], chain: int, version: int) -> None:
    """Addresses and routes of one IP version for the chain *names* behind
    *near* (see :func:`_expand_hops`)."""
    x = nodes[near.node]
    table = "interfaces" if version == 4 else "interfaces6"
    gw_field = "gateway" if version == 4 else "gateway6"
    moved = getattr(x, table)[near.interface]            # goes to the last router
    subnet = moved.network
    transit = [_transit(chain, k)[0 if version == 4 else 1] for k in range(len(names))]
    gateway = getattr(x, gw_field)
    default_far = gateway is not None and gateway in subnet
    own = [r for r in x.routes if r.to.version == version]
    far_routes = [r for r in own if r.via in subnet]
    near_nets = [a.network for i, a in getattr(x, table).items() if i != near.interface and a is not None] + \
                [r.to for r in own if r.via not in subnet]
    # X: its interface gets the first transit address; the far side is
    # reached through the chain, from an address of X's that the far side
    # can answer (its first on another interface), not the transit one.
    src = next((a.ip for i, a in getattr(x, table).items() if i != near.interface and a is not None
                and not (a.network.overlaps(TRANSIT4) if version == 4 else a.network.overlaps(TRANSIT6))), None)
    getattr(x, table)[near.interface] = transit[0][0]
    first = transit[0][1].ip
    x.routes = [r for r in x.routes if r not in far_routes] + [Route(r.to, first, src) for r in far_routes] + \
               [Route(subnet, first, src)]
    if default_far:
        setattr(x, gw_field, first)
        setattr(x, f"{gw_field}_src", src)
    for k, name in enumerate(names):
        node = nodes[name]
        last = k == len(names) - 1
        back = transit[k][0].ip                            # the previous router, or X
        ahead = None if last else transit[k + 1][1].ip     # the next router; None: the far side itself
        if version == 4:      # eth0 faces X, eth1 the far side; interfaces6 only where IPv4 is
            node.interfaces["eth0"] = transit[k][1]
            node.interfaces["eth1"] = moved if last else transit[k + 1][0]
        else:
            node.interfaces6["eth0"] = transit[k][1]
            node.interfaces6["eth1"] = moved if last else transit[k + 1][0]
        routes = [] if last else [Route(subnet, ahead)]
        routes += [Route(r.to, r.via if last else ahead) for r in far_routes]
        if default_far:
            setattr(node, gw_field, gateway if last else ahead)
            routes += [Route(net, back) for net in near_nets]
        else:
            setattr(node, gw_field, back)
        node.routes += routes


def _check_transit_free(ctx: _Ctx, nodes: dict[str, Node], line: int) -> None:
    for node in nodes.values():
        for addr in [*node.addresses(), *node.interfaces6.values()]:
            pool = TRANSIT4 if addr.version == 4 else TRANSIT6
            if addr.network.overlaps(pool):
                raise ctx.fail(line, f"hops: the chained routers' transit addresses come from {pool}, which node "
                                     f"'{node.name}' uses ({addr}); give it other addresses")
