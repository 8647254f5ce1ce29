"""Planning a run's :class:`Layout`: the names, MACs, addresses and switch
port numbers of a :class:`Topology`, computed without touching the kernel.

``up`` plans once, before anything exists: the censor's controller builds
its forwarding table from the plan before the switch first connects, and the
backend (:mod:`backend`) creates exactly what the plan says. The record
types live in :mod:`tunnelwall.base.layout`, beside the run state that keeps
them.
"""

from __future__ import annotations

from tunnelwall.base import kernel
from tunnelwall.base.layout import (HopsLayout, InterfaceLayout, Layout, LinkEnd, LinkLayout, NodeLayout, PortLayout,
                                    RelayEnd, SwitchLayout)
from tunnelwall.base.runstate import name_prefix

from .model import LinkConditions, Role, Topology


def bridge_name(switch: str, scope: str = "") -> str:
    return f"{name_prefix(scope)}{switch}"


def port_name(switch: str, port: int, scope: str = "") -> str:
    return f"{name_prefix(scope)}{switch}-{port}"


def netns_name(node: str, scope: str = "") -> str:
    """The namespace of *node* in the run with *scope* ("" is the default
    run; see runstate.name_prefix). With a RunState at hand, use
    ``state.netns_of(node)``."""
    return f"{name_prefix(scope)}{node}"


def host_mac(host_index: int, iface_index: int) -> str:
    # 02: locally administered; 74:77 = "tw"
    return f"02:74:77:{host_index >> 8:02x}:{host_index & 0xff:02x}:{iface_index:02x}"


def port_mac(switch_index: int, port: int) -> str:
    return f"02:74:77:ff:{switch_index:02x}:{port & 0xff:02x}"


NETEM_FIELDS = {"delay_ms", "jitter_ms", "loss"}      # what Mininet's TCLink passes to netem


def netem_available() -> bool:
    """Whether this kernel has the netem qdisc (loaded, or loadable)."""
    return kernel.available("netem")


def conditions_mode(conditions: LinkConditions, netem: bool | None = None) -> str:
    """How a link's conditions are applied: ``netem`` where the kernel has it
    and the conditions are ones Mininet's TCLink passes to it (delay, jitter,
    loss), else the userspace ``relay`` (:mod:`topologies.relay`)."""
    netem = netem_available() if netem is None else netem
    used = {k for k, v in conditions.__dict__.items() if v not in (0.0, None, "uniform")}
    return "netem" if netem and used <= NETEM_FIELDS else "relay"      # per-direction conditions need the relay


def plan_layout(topo: Topology, controlled: bool = False, scope: str = "", datapath: str = "user") -> Layout:
    """The layout of *topo* in the run with *scope*. *controlled*: the border
    switch gets the censor's OpenFlow controller. *datapath*: Open vSwitch's
    ("kernel" or "user"), recorded with it."""
    layout = Layout(topology=topo.name, datapath=datapath)
    for index, node in enumerate(topo.hosts(), start=1):
        layout.nodes[node.name] = NodeLayout(
            role=node.role.value, netns=netns_name(node.name, scope), index=index,
            gateway=str(node.gateway) if node.gateway else None,
            gateway6=str(node.gateway6) if node.gateway6 else None,
            interfaces={iface: InterfaceLayout(mac=host_mac(index, i), address=str(addr) if addr else None,
                                               address6=str(node.interfaces6[iface])
                                               if iface in node.interfaces6 else None)
                        for i, (iface, addr) in enumerate(node.interfaces.items())})
    for index, node in enumerate(topo.switches(), start=1):
        layout.switches[node.name] = SwitchLayout(bridge=bridge_name(node.name, scope), dpid=index,
                                                  role=node.role.value,
                                                  controlled=controlled and node.role is Role.BORDER_SWITCH)
    # Port numbers follow link order; the backend and the controller both read them from here.
    next_port = {s.name: 1 for s in topo.switches()}
    for link in topo.links:
        ends = []
        for ep in (link.a, link.b):
            node = topo.nodes[ep.node]
            if node.is_switch:
                port = next_port[node.name]
                next_port[node.name] += 1
                sw_index = layout.switches[node.name].dpid
                ends.append((node, LinkEnd(node.name, port_name(node.name, port, scope), port,
                                           port_mac(sw_index, port))))
            else:
                ends.append((node, LinkEnd(node.name, ep.interface, None,
                                           layout.nodes[node.name].interfaces[ep.interface].mac)))
        for (node, end), (peer, peer_end) in ((ends[0], ends[1]), (ends[1], ends[0])):
            if node.is_switch:
                layout.switches[node.name].ports[end.port] = PortLayout(
                    iface=end.iface, mac=end.mac, peer=peer.name, peer_mac=peer_end.mac, peer_role=peer.role.value,
                    peer_ips=[str(a.ip) for a in [*peer.addresses(), *peer.interfaces6.values()]]
                    if not peer.is_switch else [])
            else:
                layout.nodes[node.name].interfaces[end.iface].peer = peer.name
        planned = LinkLayout(ends=(ends[0][1], ends[1][1]), bandwidth_mbit=link.bandwidth_mbit)
        if link.conditions is not None:
            host_node, host_end = next((n, e) for n, e in ends if not n.is_switch)
            planned.conditions = link.conditions.as_dict()
            planned.conditions_by = conditions_mode(link.conditions)
            planned.relay = RelayEnd(host_node.name, host_end.iface)
        layout.links.append(planned)
    layout.hops = [HopsLayout(near=str(c.near), far=str(c.far), routers=list(c.routers)) for c in topo.chains]
    return layout


__all__ = ["Layout", "plan_layout", "bridge_name", "port_name", "netns_name", "host_mac", "port_mac",
           "conditions_mode", "netem_available"]
