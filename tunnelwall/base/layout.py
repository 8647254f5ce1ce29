"""The layout of a run's network: the record of names, MACs, addresses and
switch port numbers a topology gets, planned once before anything is created
(``tunnelwall.topologies.layout.plan_layout``) and kept in the run state.

It lives here, beside the run state that persists it, because every layer
reads it (the censor's controller config, the harness, the CLI); planning it
needs a :class:`Topology` and lives with the topologies. Everything is plain
data with a JSON form (:meth:`Layout.to_json`, :meth:`Layout.from_json`);
outside this module it is read by attribute, never by key.

The JSON form is the one run states and ``inspect --format json`` have
always had, so a run brought up before the layout was typed still reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class InterfaceLayout:
    """A host's interface."""
    mac: str
    address: str | None = None        # IPv4 interface with prefix, e.g. "10.0.0.2/24"; None: no address
    address6: str | None = None
    peer: str | None = None           # the node at the link's other end

    def to_json(self) -> dict:
        return {"mac": self.mac, "address": self.address, "address6": self.address6, "peer": self.peer}

    @classmethod
    def from_json(cls, data: dict) -> "InterfaceLayout":
        return cls(mac=data["mac"], address=data.get("address"), address6=data.get("address6"),
                   peer=data.get("peer"))

    @property
    def ip(self) -> str | None:
        """The IPv4 address without its prefix length."""
        return self.address.split("/")[0] if self.address else None

    @property
    def ip6(self) -> str | None:
        """The IPv6 address without its prefix length."""
        return self.address6.split("/")[0] if self.address6 else None


@dataclass
class ContainerLayout:
    """A host that is a container: its image and the PID whose namespaces it has."""
    image: str
    pid: int


@dataclass
class NodeLayout:
    """A host: its own network namespace and interfaces."""
    role: str                          # topologies.model.Role's value
    netns: str
    index: int                         # 1-based, in topology order; MACs are made from it
    interfaces: dict[str, InterfaceLayout] = field(default_factory=dict)
    gateway: str | None = None
    gateway6: str | None = None
    container: ContainerLayout | None = None

    def to_json(self) -> dict:
        out = {"role": self.role, "netns": self.netns, "index": self.index, "gateway": self.gateway,
               "gateway6": self.gateway6, "interfaces": {k: v.to_json() for k, v in self.interfaces.items()}}
        if self.container is not None:
            out["container"] = {"image": self.container.image, "pid": self.container.pid}
        return out

    @classmethod
    def from_json(cls, data: dict) -> "NodeLayout":
        container = data.get("container")
        return cls(role=data["role"], netns=data["netns"], index=data["index"],
                   interfaces={k: InterfaceLayout.from_json(v) for k, v in data.get("interfaces", {}).items()},
                   gateway=data.get("gateway"), gateway6=data.get("gateway6"),
                   container=ContainerLayout(container["image"], container["pid"]) if container else None)


@dataclass
class PortLayout:
    """A switch port and what is plugged into it."""
    iface: str                         # the root-namespace veth end that is the port
    mac: str
    peer: str                          # the node at the other end
    peer_mac: str
    peer_role: str
    peer_ips: list[str] = field(default_factory=list)   # a host peer's addresses (no prefix), v4 then v6

    def to_json(self) -> dict:
        return {"iface": self.iface, "mac": self.mac, "peer": self.peer, "peer_mac": self.peer_mac,
                "peer_ips": list(self.peer_ips), "peer_role": self.peer_role}

    @classmethod
    def from_json(cls, data: dict) -> "PortLayout":
        return cls(iface=data["iface"], mac=data["mac"], peer=data["peer"], peer_mac=data["peer_mac"],
                   peer_role=data["peer_role"], peer_ips=list(data.get("peer_ips", [])))


@dataclass
class SwitchLayout:
    """An Open vSwitch bridge."""
    bridge: str
    dpid: int
    role: str
    controlled: bool                   # the border switch of a censored run: OpenFlow controller attached
    ports: dict[int, PortLayout] = field(default_factory=dict)   # port number -> port, in link order

    def ports_to(self, peer: str) -> list[int]:
        """The numbers of the ports whose other end is *peer*."""
        return [number for number, port in self.ports.items() if port.peer == peer]

    def ports_json(self) -> dict:
        """The ports in their JSON form (port numbers as strings, as JSON keys are)."""
        return {str(number): port.to_json() for number, port in self.ports.items()}

    def to_json(self) -> dict:
        return {"bridge": self.bridge, "dpid": self.dpid, "role": self.role, "controlled": self.controlled,
                "ports": self.ports_json()}

    @classmethod
    def from_json(cls, data: dict) -> "SwitchLayout":
        return cls(bridge=data["bridge"], dpid=data["dpid"], role=data["role"], controlled=data["controlled"],
                   ports={int(k): PortLayout.from_json(v) for k, v in data.get("ports", {}).items()})


@dataclass
class LinkEnd:
    node: str
    iface: str                         # a host's interface, or the switch port's veth
    port: int | None                   # the switch port number; None at a host
    mac: str

    def to_json(self) -> dict:
        return {"node": self.node, "iface": self.iface, "port": self.port, "mac": self.mac}

    @classmethod
    def from_json(cls, data: dict) -> "LinkEnd":
        return cls(node=data["node"], iface=data["iface"], port=data.get("port"), mac=data["mac"])


@dataclass
class RelayEnd:
    """Where a link's userspace relay runs: the host end of the link."""
    node: str
    iface: str


@dataclass
class LinkLayout:
    ends: tuple[LinkEnd, LinkEnd]
    bandwidth_mbit: float | None = None
    # A link with delay, loss and the like: its conditions in netem's
    # vocabulary (LinkConditions.as_dict(), also the relay's --conditions),
    # what applies them ("netem" or "relay") and, for the relay, where.
    conditions: dict | None = None
    conditions_by: str | None = None
    relay: RelayEnd | None = None

    def to_json(self) -> dict:
        out = {"ends": [e.to_json() for e in self.ends], "bandwidth_mbit": self.bandwidth_mbit}
        if self.conditions is not None:
            out["conditions"] = self.conditions
            out["conditions_by"] = self.conditions_by
            out["relay"] = {"node": self.relay.node, "iface": self.relay.iface} if self.relay else None
        return out

    @classmethod
    def from_json(cls, data: dict) -> "LinkLayout":
        a, b = (LinkEnd.from_json(e) for e in data["ends"])
        relay = data.get("relay")
        return cls(ends=(a, b), bandwidth_mbit=data.get("bandwidth_mbit"), conditions=data.get("conditions"),
                   conditions_by=data.get("conditions_by"),
                   relay=RelayEnd(relay["node"], relay["iface"]) if relay else None)


@dataclass
class HopsLayout:
    """Router hops on a written link (``hops: N``): the routers chained
    between its near end (a router's interface, "ix:eth1") and its far end."""
    near: str
    far: str
    routers: list[str] = field(default_factory=list)    # near to far

    @property
    def count(self) -> int:
        return len(self.routers)

    def to_json(self) -> dict:
        return {"near": self.near, "far": self.far, "hops": self.count, "routers": list(self.routers)}

    @classmethod
    def from_json(cls, data: dict) -> "HopsLayout":
        return cls(near=data["near"], far=data["far"], routers=list(data.get("routers", [])))


@dataclass
class Layout:
    topology: str
    nodes: dict[str, NodeLayout] = field(default_factory=dict)       # hosts, in topology order
    switches: dict[str, SwitchLayout] = field(default_factory=dict)
    links: list[LinkLayout] = field(default_factory=list)             # in topology order
    datapath: str = "user"             # Open vSwitch's: "kernel" or "user" (topologies/datapath.py)
    hops: list[HopsLayout] = field(default_factory=list)              # router chains, in link order

    def hops_of(self, node: str) -> HopsLayout | None:
        """The router chain *node* belongs to, if any."""
        return next((h for h in self.hops if node in h.routers), None)

    def role_of(self, node: str) -> str | None:
        return self.nodes[node].role if node in self.nodes else None

    def by_role(self, role: str) -> list[str]:
        """The hosts with *role* (e.g. "client"), in topology order."""
        return [name for name, node in self.nodes.items() if node.role == role]

    def to_json(self) -> dict:
        out = {"topology": self.topology, "nodes": {k: v.to_json() for k, v in self.nodes.items()},
               "switches": {k: v.to_json() for k, v in self.switches.items()},
               "links": [link.to_json() for link in self.links], "datapath": self.datapath}
        if self.hops:      # the form of a layout without router hops is unchanged
            out["hops"] = [h.to_json() for h in self.hops]
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Layout":
        return cls(topology=data["topology"],
                   nodes={k: NodeLayout.from_json(v) for k, v in data.get("nodes", {}).items()},
                   switches={k: SwitchLayout.from_json(v) for k, v in data.get("switches", {}).items()},
                   links=[LinkLayout.from_json(v) for v in data.get("links", [])],
                   # layouts recorded before the datapath was chosen used the userspace one
                   datapath=data.get("datapath", "user"),
                   # layouts recorded before router hops had none
                   hops=[HopsLayout.from_json(h) for h in data.get("hops", [])])
