"""Starting the censor of a run: the OpenFlow controller (root namespace,
OpenFlow and REST on 127.0.0.1) and the middlebox (in its node's namespace),
joined by a Unix socket."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sys

from tunnelwall.middlebox.profiles import Profile
from tunnelwall.topologies.mininet_backend import ControllerAddress, plan_layout
from tunnelwall.topologies.graph import link_label
from tunnelwall.topologies.model import Topology

from tunnelwall.base import heartbeat, procs
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.runstate import STATE_DIR, RunState, all_runs
from tunnelwall.runtime.cleanup import ZONE_BASE, ZONES, flush_zone


# conntrack offload: the VLAN tag the middlebox puts on frames of flows it
# allowed, for the switch to mark their connection (controller/pipeline.py).
BYPASS_VLAN = 4093


def conntrack_zone(state: RunState) -> int:
    """A connection-tracking zone of the run's own: the switch's (either datapath)
    tracker is shared by every bridge on the machine (runs side by side, or
    a run and its leftovers), and teardown flushes this zone only."""
    taken = {r.files.get("ct_zone") for r in all_runs() if r.run_id != state.run_id}
    seed = int.from_bytes(hashlib.sha256(state.run_id.encode()).digest()[:2], "big")
    for step in range(ZONES):
        zone = ZONE_BASE + (seed + step) % ZONES
        if zone not in taken:
            # Whatever a run that died without its teardown left in it goes:
            # a stale mark would let a new connection on the same 5-tuple by.
            flush_zone(zone, state.datapath)
            return zone
    raise TunnelwallError("no free connection-tracking zone")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CensorRuntime:
    def __init__(self, state: RunState, topo: Topology, profile: Profile, placement: str | None = None,
                 seed: int | None = None, overrides: list[str] | None = None):
        self.state, self.topo, self.profile = state, topo, profile
        self.overrides = list(overrides or [])
        self.placement = placement or profile.placement or topo.censor.placement
        self.seed = seed

    def start_controller(self) -> ControllerAddress:
        site = self.topo.censor
        layout = plan_layout(self.topo, controlled=True, scope=self.state.scope)
        border = layout["switches"][site.switch]
        mbox_ports = [int(p) for p, i in border["ports"].items() if i["peer"] == site.middlebox]
        logs = self.state.logs
        token = secrets.token_urlsafe(24)
        token_file = logs / "api-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, token.encode())
        os.close(fd)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.config = {
            "dpid": border["dpid"], "ports": border["ports"], "middlebox_port": mbox_ports[0],
            "placement": self.placement, "fail": self.profile.fail, "profile": self.profile.name,
            "rule_idle_timeout": self.profile.flows.rule_idle_timeout,
            "offload": self.profile.flows.offload,
            "socket": str(STATE_DIR / f"{self.state.run_id}.sock"),
            "verdict_log": str(logs / "verdicts.jsonl"),
            "of_port": free_port(), "api_port": free_port(), "api_token": token,
            "probe": {"delay": self.profile.probe.delay, "count": self.profile.probe.count,
                      "timeout": self.profile.probe.timeout},
            # The live view draws what `tunnelwall graph` draws: nodes, addresses, link conditions.
            "topology": {"name": self.topo.name,
                         "nodes": [{"name": n.name, "role": n.role.value,
                                    "address": str(n.primary_ip()) if n.primary_ip() else None,
                                    "address6": str(n.primary_ip6()) if n.primary_ip6() else None}
                                   for n in self.topo.nodes.values()],
                         "links": [[l.a.node, l.b.node, link_label(l)] for l in self.topo.links]},
        }
        if self.profile.flows.offload == "conntrack":
            self.config.update(ct_zone=conntrack_zone(self.state), bypass_vlan=BYPASS_VLAN)
            self.state.files["ct_zone"] = self.config["ct_zone"]
        if site.prober:
            port, info = next((int(p), i) for p, i in border["ports"].items() if i["peer"] == site.prober)
            self.config.update(prober_port=port, prober_mac=info["peer_mac"])
        config_file = logs / "controller.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, json.dumps(self.config, indent=1).encode())
        os.close(fd)
        self.state.api = {"port": self.config["api_port"], "token_file": str(token_file)}
        self.state.files.update({"verdict_log": self.config["verdict_log"], "socket": self.config["socket"],
                                 "placement": self.placement, "controller_config": str(config_file)})
        self.state.save()
        rec = procs.spawn(self.state, "controller", [sys.executable, "-m", "tunnelwall.controller.run",
                                                     "--config", str(config_file)])
        _wait_port(self.config["of_port"], rec, "controller")
        _wait_port(self.config["api_port"], rec, "controller API")
        return ControllerAddress("c0", self.config["of_port"])

    def start_middlebox(self) -> None:
        site = self.topo.censor
        iface = next(iter(self.topo.nodes[site.middlebox].interfaces))
        config = {"iface": iface, "profile": self.profile.source or self.profile.name, "seed": self.seed,
                  "placement": self.placement, "socket": self.config["socket"], "overrides": self.overrides,
                  "offload": self.config["offload"], "bypass_vlan": self.config.get("bypass_vlan"),
                  "heartbeat": str(self.state.logs / heartbeat.MIDDLEBOX)}
        config_file = self.state.logs / "middlebox.json"
        config_file.write_text(json.dumps(config, indent=1))
        rec = procs.spawn(self.state, "middlebox", [sys.executable, "-m", "tunnelwall.middlebox.daemon",
                                                    "--config", str(config_file)],
                          netns=self.state.netns_of(site.middlebox))
        wait_censor_ready(self.state, rec)
        if site.prober:
            address = str(self.topo.nodes[site.prober].primary_ip())
            procs.spawn(self.state, "prober", [sys.executable, "-m", "tunnelwall.middlebox.prober", "--socket",
                                               self.config["socket"], "--source", address],
                        netns=self.state.netns_of(site.prober))


def wait_censor_ready(state: RunState, rec=None, timeout: float = 30.0) -> dict:
    from tunnelwall.runtime.api import Api
    api = Api(state)

    def health():
        try:
            h = api.health()
        except TunnelwallError:
            return None
        return h if h["switch_connected"] and h["middlebox_connected"] else None
    return procs.wait_started(rec, health, timeout, "the censor (switch and middlebox connected)")


def _wait_port(port: int, rec, what: str, timeout: float = 30.0) -> None:
    def accepting():
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0
    procs.wait_started(rec, accepting, timeout, f"{what} listening on 127.0.0.1:{port}")
