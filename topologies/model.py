"""Typed model of a topology: what the loader produces and backends consume.

Nothing here touches the kernel; a ``Topology`` is plain data, so it can be
validated, printed (``tunnelwall inspect``), graphed or generated in tests.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

IPv4Interface = ipaddress.IPv4Interface
IPv4Address = ipaddress.IPv4Address
IPv4Network = ipaddress.IPv4Network


class Role(str, enum.Enum):
    """What a node is for. Switch roles become Open vSwitch bridges; the rest
    are hosts in their own network namespace."""

    CLIENT = "client"            # a user inside the censored network
    ROUTER = "router"            # e.g. the ISP access router; forwards IPv4
    SERVER = "server"            # outside: web server, VPN/proxy endpoint
    HOST = "host"                # anything else with an IP stack
    SWITCH = "switch"            # a plain learning switch (OVS, standalone)
    BORDER_SWITCH = "border-switch"  # the OpenFlow-controlled border switch
    MIDDLEBOX = "middlebox"      # the censor's classifier, attached to the border
    PROBER = "prober"            # the censor's active prober (outside the client's view)

    @property
    def is_switch(self) -> bool:
        return self in (Role.SWITCH, Role.BORDER_SWITCH)

    @property
    def forwards(self) -> bool:
        return self is Role.ROUTER


ROLE_ALIASES = {"isp-router": Role.ROUTER, "border": Role.BORDER_SWITCH}

# Services the runtime can start on a node (see tunnelwall.services).
KNOWN_SERVICES = ("http", "https", "dns")
# Classes of background traffic a client node can generate (services.traffic).
TRAFFIC_KINDS = ("https", "http", "dns", "quic")


@dataclass(frozen=True)
class Traffic:
    """Background traffic from a client node: ordinary users' connections."""
    mix: tuple[str, ...] = TRAFFIC_KINDS
    per_minute: float = 30.0


@dataclass(frozen=True)
class Route:
    to: IPv4Network | ipaddress.IPv6Network
    via: IPv4Address | ipaddress.IPv6Address
    # The source address for packets the node itself sends this way (ip
    # route ... src): a router whose interface faces a chain of link hops
    # sends from an address the rest of the network can answer, not from its
    # transit address, which only its neighbours know.
    src: IPv4Address | ipaddress.IPv6Address | None = None


@dataclass
class Node:
    name: str
    role: Role
    # interface name -> address (None: no IP, e.g. the middlebox's sniffing port)
    interfaces: dict[str, IPv4Interface | None] = field(default_factory=dict)
    gateway: IPv4Address | None = None
    # IPv6, beside IPv4 (dual stack): interface name -> address, and the v6 default gateway
    interfaces6: dict[str, ipaddress.IPv6Interface] = field(default_factory=dict)
    gateway6: ipaddress.IPv6Address | None = None
    # Source addresses for the default routes (see Route.src); None: the kernel's choice.
    gateway_src: IPv4Address | None = None
    gateway6_src: ipaddress.IPv6Address | None = None
    routes: list[Route] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    image: str | None = None          # set: the node is a container (images/)
    traffic: Traffic | None = None    # background traffic (client nodes)
    line: int = 0
    field_lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_switch(self) -> bool:
        return self.role.is_switch

    def addresses(self) -> list[IPv4Interface]:
        return [a for a in self.interfaces.values() if a is not None]

    def primary_ip(self) -> IPv4Address | None:
        addrs = self.addresses()
        return addrs[0].ip if addrs else None

    def primary_ip6(self) -> ipaddress.IPv6Address | None:
        return next(iter(self.interfaces6.values())).ip if self.interfaces6 else None


@dataclass(frozen=True)
class Endpoint:
    node: str
    interface: str | None  # None for switch ports (numbered by the backend)

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}" if self.interface else self.node


@dataclass(frozen=True)
class LinkConditions:
    """What a real path does to packets, on one link, in both directions
    (netem's vocabulary): delay and its jitter in milliseconds, and
    probabilities (0..1) of loss, duplication, corruption and reordering.
    ``loss_burst`` (p, r) is a Gilbert-Elliott channel: p the chance to go
    from the good state to the bad one (where every packet is lost), r the
    chance to come back."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    jitter_distribution: str = "uniform"      # uniform | normal
    loss: float = 0.0
    loss_burst: tuple[float, float] | None = None
    duplicate: float = 0.0
    corrupt: float = 0.0
    reorder: float = 0.0
    # Per direction, seen from the node at the link's end: what differs for
    # frames the node sends (``from_node``, its upload) or receives (``to_node``).
    from_node: "LinkConditions | None" = None
    to_node: "LinkConditions | None" = None

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()
               if k not in ("from_node", "to_node") and v not in (0.0, None, "uniform")}
        for side in ("from_node", "to_node"):
            if getattr(self, side) is not None:
                out[side] = getattr(self, side).as_dict()
        return out


@dataclass
class Link:
    a: Endpoint
    b: Endpoint
    bandwidth_mbit: float | None = None
    line: int = 0
    conditions: LinkConditions | None = None
    hops: int = 0      # as written; the loader expands it into a HopChain and clears it

    @property
    def name(self) -> str:
        return f"{self.a.node}-{self.b.node}"


@dataclass(frozen=True)
class HopChain:
    """Router hops on a link (``hops: N``): the N forwarding routers the
    loader chained between the link's near end (a router's interface) and
    its far end. A path across the link passes every one of them, and each
    decrements the TTL, so a packet's distance is the topology's, not an
    accident of how few namespaces the testbed happens to have."""
    near: Endpoint              # the router interface the chain stands behind
    far: Endpoint               # the link's other end
    routers: tuple[str, ...]    # the chain's nodes, from the near end to the far end
    line: int = 0

    @property
    def count(self) -> int:
        return len(self.routers)

    @property
    def name(self) -> str:
        return f"{self.near}-{self.far}"


@dataclass
class CensorSite:
    """Where the censor sits: which switch it controls and which node classifies."""

    switch: str
    middlebox: str
    profile: str = "log-only"
    placement: str = "tap"   # tap: copy first packets; inline: first packets pass through the middlebox
    prober: str | None = None


@dataclass
class Topology:
    name: str
    nodes: dict[str, Node]
    links: list[Link]
    description: str = ""
    censor: CensorSite | None = None
    source: str = "<generated>"
    chains: list[HopChain] = field(default_factory=list)    # router hops expanded from links' ``hops``

    def chain_of(self, node: str) -> HopChain | None:
        """The hop chain *node* is a router of, if any."""
        return next((c for c in self.chains if node in c.routers), None)

    def hosts(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.is_switch]

    def switches(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_switch]

    def by_role(self, *roles: Role) -> list[Node]:
        return [n for n in self.nodes.values() if n.role in roles]
