"""Topologies made by code rather than YAML (``star:N`` for scale tests)."""

from __future__ import annotations

import ipaddress

from .model import CensorSite, Endpoint, Link, Node, Role, Topology


def star(clients: int) -> Topology:
    """``clients`` clients on one access switch behind an ISP router, the
    border switch with the middlebox, and two outside servers: the isp.yaml
    shape at any size (e.g. 50 hosts for the bring-up benchmark)."""
    if not 1 <= clients <= 250:
        raise ValueError("star:N takes 1 to 250 clients")
    nodes: dict[str, Node] = {}
    links: list[Link] = []
    for i in range(1, clients + 1):
        name = f"c{i}"
        nodes[name] = Node(name, Role.CLIENT, {"eth0": ipaddress.IPv4Interface(f"10.0.0.{i + 1}/24")},
                           gateway=ipaddress.IPv4Address("10.0.0.1"))
        links.append(Link(Endpoint(name, "eth0"), Endpoint("lan", None)))
    nodes["lan"] = Node("lan", Role.SWITCH)
    nodes["isp"] = Node("isp", Role.ROUTER, {"eth0": ipaddress.IPv4Interface("10.0.0.1/24"),
                                            "eth1": ipaddress.IPv4Interface("198.18.0.1/24")})
    nodes["border"] = Node("border", Role.BORDER_SWITCH)
    nodes["censor"] = Node("censor", Role.MIDDLEBOX, {"eth0": None})
    links += [Link(Endpoint("isp", "eth0"), Endpoint("lan", None)),
              Link(Endpoint("isp", "eth1"), Endpoint("border", None)),
              Link(Endpoint("censor", "eth0"), Endpoint("border", None))]
    for name, octet in (("web", 10), ("vpn", 20)):
        nodes[name] = Node(name, Role.SERVER, {"eth0": ipaddress.IPv4Interface(f"198.18.0.{octet}/24")},
                           gateway=ipaddress.IPv4Address("198.18.0.1"), services=["http", "https"])
        links.append(Link(Endpoint(name, "eth0"), Endpoint("border", None)))
    return Topology(name=f"star{clients}", nodes=nodes, links=links,
                    description=f"{clients} clients behind one router (generated)",
                    censor=CensorSite(switch="border", middlebox="censor", profile="log-only"),
                    source=f"star:{clients}")
