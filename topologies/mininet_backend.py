"""Mininet backend (:class:`backend.Backend`): a planned :class:`Layout`
becomes namespaces, veths and Open vSwitch bridges.

Machine facts this module is built around (README, "Machine facts"):

* no openvswitch kernel module: bridges use the userspace datapath
  (``datapath_type=netdev``, Mininet ``datapath='user'``); where the module
  is loaded they use the kernel's (the run state's ``datapath``, chosen by
  :mod:`datapath`);
* TCP through the userspace datapath stalls unless tx checksum offload is
  off on the veths (``ethtool -K IF tx off``), so every veth end gets that;
* no sch_netem: links may be shaped (HTB via Mininet's TCLink) but not delayed.

Mininet builds; it does not own the network afterwards. Each host's
namespace is pinned with ``ip netns attach tw-<node>``, so the network
outlives the building process (``tunnelwall up`` returns, ``down`` removes
it) and users can ``ip netns exec tw-c1 ...``. Every namespace, bridge and
root-side veth is recorded in the run state before it is created.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar

from tunnelwall.base import procs
from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError
from tunnelwall.base.layout import ContainerLayout, Layout, LinkLayout
from tunnelwall.base.runstate import BRIDGE_LABEL, RunState

from .backend import Backend, ControllerAddress, NetworkStatus
from .layout import netns_name
from .model import LinkConditions, Role, Topology


class MininetBackend(Backend):
    """Build a topology with Mininet. Node classes are injectable (Mininet
    style): ``MininetBackend(state, host_cls=MyHost, switch_cls=MySwitch)``."""

    name: ClassVar[str] = "mininet"

    def __init__(self, state: RunState, host_cls=None, switch_cls=None, link_cls=None, shaped_link_cls=None,
                 container_cls=None):
        super().__init__(state)
        self.classes = {"host": host_cls, "switch": switch_cls, "link": link_cls, "shaped_link": shaped_link_cls,
                        "container": container_cls}

    def _load_mininet(self) -> None:
        """Mininet is imported only to deploy: destroy and inspect work from
        the run state without it."""
        try:
            from mininet.link import Link, TCLink
            from mininet.log import setLogLevel
            from mininet.net import Mininet
            from mininet.node import Host, OVSSwitch
        except ImportError:
            raise EnvironmentProblem("Mininet is not importable: run scripts/setup.sh and use .venv/bin/tunnelwall "
                                     "(Debian's python3-mininet lives in the system site-packages)") from None
        setLogLevel("error")
        given = self.classes
        self.Mininet = Mininet
        self.host_cls = given["host"] or Host
        self.switch_cls = given["switch"] or OVSSwitch
        self.link_cls = given["link"] or Link
        self.shaped_link_cls = given["shaped_link"] or _shaped_link_class(Link, TCLink)
        self.container_cls = given["container"] or _container_host_class(Host)

    # ------------------------------------------------------------------
    def deploy(self, topo: Topology, layout: Layout, controller: ControllerAddress | None = None,
               fail_mode: str = "secure") -> None:
        self._load_mininet()
        state = self.state
        images = {}
        if any(n.image for n in topo.hosts()):
            # Every image is checked before anything is created.
            from tunnelwall.topologies import images as image_store
            images = {n.name: image_store.resolve(n.image) for n in topo.hosts() if n.image}
        _require_ovs()
        net = self.Mininet(topo=None, build=False, controller=None, autoSetMacs=False)
        mn_nodes = {}
        for node in topo.hosts():
            planned = layout.nodes[node.name]
            state.add("netns", planned.netns)
            if node.image:
                pid = self._start_container(node, images[node.name])
                host = net.addHost(node.name, cls=self.container_cls, container_pid=pid)
                planned.container = ContainerLayout(image=images[node.name], pid=pid)
            else:
                pid = None
                host = net.addHost(node.name, cls=self.host_cls, inNamespace=True)
            mn_nodes[node.name] = host
            _check(["ip", "netns", "attach", planned.netns, str(pid or host.pid)], f"node '{node.name}'")
        for node in topo.switches():
            planned = layout.switches[node.name]
            state.add("bridges", planned.bridge)
            mn_nodes[node.name] = net.addSwitch(
                planned.bridge, cls=self.switch_cls, datapath=layout.datapath, protocols="OpenFlow13",
                failMode=fail_mode if planned.controlled else "standalone", dpid=f"{planned.dpid:016x}")
        root_ifaces = []
        for model_link, link in zip(topo.links, layout.links):
            a, b = link.ends
            for end in (a, b):
                if end.port is not None:
                    state.add("root_ifaces", end.iface)
                    root_ifaces.append(end.iface)
            params = {}
            cls = self.link_cls
            if link.bandwidth_mbit:
                cls = self.shaped_link_cls
                params = {"bw": link.bandwidth_mbit}
            names, macs = [a.iface, b.iface], [a.mac, b.mac]
            if link.conditions_by == "netem":
                cls = self.shaped_link_cls
                params.update(_netem_params(model_link.conditions))
            elif link.conditions_by == "relay":
                # The link ends in IFr; the node's own IF is the far end of a
                # veth pair inside the node, and the relay copies between them.
                i = 0 if a.node == link.relay.node and a.port is None else 1
                # IFr never sends frames of its own; it gets a MAC of its own all the same.
                names[i], macs[i] = names[i] + "r", "06" + macs[i][2:]
            net.addLink(mn_nodes[a.node], mn_nodes[b.node], port1=a.port, port2=b.port,
                        intfName1=names[0], intfName2=names[1], addr1=macs[0], addr2=macs[1], cls=cls, **params)
        relays = [link for link in layout.links if link.conditions_by == "relay"]
        self._configure_hosts(topo, mn_nodes, {(r.relay.node, r.relay.iface):
                                         layout.nodes[r.relay.node].interfaces[r.relay.iface].mac for r in relays})
        _tx_off_root(root_ifaces)
        for link in relays:
            self._start_relay(link)
        for node in topo.switches():
            sw = mn_nodes[node.name]
            censored = layout.switches[node.name].controlled
            sw.start([ControllerAddress("c0", controller.port)] if censored else [])
            _check(["ovs-vsctl", "--timeout=10", "set", "bridge", sw.name,
                    f"external_ids:{BRIDGE_LABEL}={state.run_id}"], f"switch '{node.name}'")
        for host in mn_nodes.values():
            if host.name in layout.nodes:
                # The namespace is pinned; Mininet's helper shell is not needed any more.
                host.terminate()
        state.layout = layout
        state.save()

    def destroy(self) -> list[str]:
        """Containers, bridges, root-side veths and namespaces the run state
        lists, in that order (a namespace goes once nothing holds it)."""
        state = self.state
        removed = []
        if state.containers:
            removed += self._remove_containers()
        for bridge in state.bridges:
            if _quiet(["ovs-vsctl", "--timeout=10", "br-exists", bridge]).returncode == 0:
                _quiet(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", bridge])
                removed.append(f"bridge {bridge}")
        ifaces = existing_ifaces()
        for iface in state.root_ifaces:
            if iface in ifaces:
                _quiet(["ip", "link", "del", iface])
                removed.append(f"veth {iface}")
        namespaces = existing_netns()
        for ns in state.netns:
            if ns in namespaces:
                # Deleting the name drops the namespace once no process is in it;
                # its veths vanish with it (and so do their root-side peers).
                _quiet(["ip", "netns", "del", ns])
                removed.append(f"netns {ns}")
        return removed

    def inspect(self) -> NetworkStatus:
        state = self.state
        exists = {"netns": existing_netns().__contains__, "root_ifaces": existing_ifaces().__contains__,
                  "bridges": lambda b: _quiet(["ovs-vsctl", "--timeout=10", "br-exists", b]).returncode == 0}
        status = NetworkStatus()
        for kind, present in exists.items():
            names = getattr(state, kind)
            status.present[kind] = [n for n in names if present(n)]
            status.missing[kind] = [n for n in names if not present(n)]
        return status

    def _remove_containers(self) -> list[str]:
        from tunnelwall.topologies import dockerd
        removed = []
        for ns in self.state.netns:
            (procs.CONTAINER_DIR / ns).unlink(missing_ok=True)
        if not dockerd.running():
            return removed
        import docker
        client = dockerd.client()
        for name in self.state.containers:
            try:
                container = client.containers.get(name)
            except docker.errors.NotFound:
                continue
            if container.labels.get(dockerd.LABEL):
                container.remove(force=True)
                removed.append(f"container {name}")
        return removed

    def _start_container(self, node, image: str) -> int:
        """A container node: Docker runs the image with no network of its
        own; Mininet's links are then made in its network namespace. Only the
        run's tool work directories are mounted (at the same path, so they are
        the same inside and out): never the run's log directory, which holds
        the controller's configuration and the REST API's token."""
        from tunnelwall.topologies import dockerd

        name = f"tw-{self.state.run_id}-{node.name}"
        self.state.add("containers", name)
        tools = self.state.logs / "tools"
        tools.mkdir(parents=True, exist_ok=True)
        logs = str(tools)
        container = dockerd.client().containers.run(
            image, command=["sleep", "infinity"], name=name, hostname=node.name, detach=True,
            network_mode="none", labels={dockerd.LABEL: self.state.run_id},
            # What tunnels need and no more: interfaces, raw sockets, TUN devices.
            cap_add=["NET_ADMIN", "NET_RAW"], devices=["/dev/net/tun:/dev/net/tun:rwm"],
            volumes={logs: {"bind": logs, "mode": "rw"}}, init=True)
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        procs.CONTAINER_DIR.mkdir(parents=True, exist_ok=True)
        (procs.CONTAINER_DIR / netns_name(node.name, self.state.scope)).write_text(str(pid))
        return pid

    def _start_relay(self, link: LinkLayout) -> None:
        """The userspace relay of a link with conditions, in its node's namespace."""
        import json
        import sys
        node, iface = link.relay.node, link.relay.iface
        seed = sum(ord(ch) for ch in f"{node}:{iface}")
        rec = procs.spawn(self.state, f"relay-{node}-{iface}",
                          [sys.executable, "-m", "tunnelwall.topologies.relay", "--a", f"{iface}p", "--b", f"{iface}r",
                           "--conditions", json.dumps(link.conditions), "--seed", str(seed)],
                          netns=netns_name(node, self.state.scope), host_binaries=True)
        procs.wait_started(rec, lambda: "relaying" in Path(rec.log).read_text(errors="replace"), 10,
                           f"the link relay on {node}:{iface}")

    def _configure_hosts(self, topo: Topology, mn_nodes: dict, relayed: dict | None = None) -> None:
        """*relayed*: (node, interface) -> MAC of the interfaces behind a link relay."""
        relayed = relayed or {}
        for node in topo.hosts():
            # IPv6 is on everywhere (the censor inspects it like IPv4); no
            # router advertisements or autoconfiguration: addresses and routes
            # are the topology's. Only the middlebox's sniffing port stays
            # silent: it must never send anything of its own.
            forward = 1 if node.role.forwards else 0
            cmds = ["sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 "
                    "net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.autoconf=0 "
                    f"net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.forwarding={forward}",
                    "ip link set lo up"]
            for iface in node.interfaces:
                if (node.name, iface) in relayed:
                    # IF <-> IFp inside the node; the relay copies IFp <-> IFr. Neither
                    # relay end may send anything of its own: no IPv6, no address.
                    cmds += [f"ip link add {iface} address {relayed[(node.name, iface)]} type veth peer name {iface}p",
                             *(f"sysctl -qw net.ipv6.conf.{x}.disable_ipv6=1" for x in (f"{iface}p", f"{iface}r")),
                             # arp off: the node's kernel must not answer ARP on the relay's ends
                             # with their MACs (its addresses are all "local" to them too).
                             *(f"ip link set {x} arp off promisc on up" for x in (f"{iface}p", f"{iface}r")),
                             *(f"ethtool -K {x} tx off >/dev/null 2>&1" for x in (f"{iface}p", f"{iface}r"))]
            for iface, addr in node.interfaces.items():
                # Mininet leaves a default address on some interfaces; start clean.
                cmds.append(f"ip -4 addr flush dev {iface}")
                cmds.append(f"ethtool -K {iface} tx off >/dev/null 2>&1")
                cmds.append(f"sysctl -qw net.ipv6.conf.{iface}.accept_ra=0 net.ipv6.conf.{iface}.autoconf=0 "
                            f"net.ipv6.conf.{iface}.accept_dad=0")
                if addr is not None:
                    cmds.append(f"ip addr add {addr} dev {iface}")
                if iface in node.interfaces6:
                    cmds.append(f"ip -6 addr add {node.interfaces6[iface]} dev {iface} nodad")
                cmds.append(f"ip link set {iface} up")
            if node.role is Role.MIDDLEBOX:
                port = next(iter(node.interfaces))
                cmds.append(f"sysctl -qw net.ipv6.conf.{port}.disable_ipv6=1")
                cmds.append(f"ip link set {port} promisc on")
            if node.gateway:
                cmds.append(f"ip route replace default via {node.gateway}"
                            + (f" src {node.gateway_src}" if node.gateway_src else ""))
            if node.gateway6:
                cmds.append(f"ip -6 route replace default via {node.gateway6}"
                            + (f" src {node.gateway6_src}" if node.gateway6_src else ""))
            for route in node.routes:
                cmds.append(f"ip {'-6 ' if route.to.version == 6 else ''}route replace {route.to} via {route.via}"
                            + (f" src {route.src}" if route.src else ""))
            cmds.append(f"sysctl -qw net.ipv4.ip_forward={forward}")
            script = " && ".join(cmds)
            # The host's tools configure the node's network namespace (a container's too).
            res = subprocess.run(procs.in_netns(netns_name(node.name, self.state.scope), ["sh", "-c", script],
                                                host_binaries=True),
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise TunnelwallError(f"node '{node.name}': configuring interfaces failed: "
                                      f"{(res.stderr or res.stdout).strip().splitlines()[-1:]}")


def _container_host_class(Host):
    """A Mininet host whose shell joins an existing container's network and
    mount namespaces, Containernet-style. (``mnexec -a PID`` fails against
    Docker containers here, so the shell is entered with ``nsenter``.)"""

    class ContainerHost(Host):
        def __init__(self, name, container_pid=0, **params):
            self.container_pid = container_pid
            params["inNamespace"] = False      # the namespace exists already: the container's
            Host.__init__(self, name, **params)

        def _popen(self, cmd, **params):
            if cmd[:2] == ["mnexec", "-cd"]:   # Mininet's startShell: keep -c -d, enter the container
                cmd = ["mnexec", "-cd", "nsenter", "-t", str(self.container_pid), "-m", "-n", "--", *cmd[2:]]
            return Host._popen(self, cmd, **params)
    return ContainerHost


def _shaped_link_class(Link, TCLink):
    """TCLink whose interfaces drop one harmless kernel warning.

    For any HTB rate above ~16 Mbit/s the kernel says "quantum of class ...
    is big. Consider r2q change." and clamps the quantum itself; Mininet
    would print that line as an error for every shaped link."""
    from mininet.link import TCIntf

    class QuietTCIntf(TCIntf):
        def tc(self, cmd, tc="tc"):
            out = super().tc(cmd, tc)
            return "\n".join(line for line in out.splitlines() if "quantum of class" not in line)

    class ShapedLink(Link):
        def __init__(self, node1, node2, port1=None, port2=None, intfName1=None, intfName2=None,
                     addr1=None, addr2=None, **params):
            Link.__init__(self, node1, node2, port1=port1, port2=port2, intfName1=intfName1,
                          intfName2=intfName2, cls1=QuietTCIntf, cls2=QuietTCIntf, addr1=addr1, addr2=addr2,
                          params1=params, params2=params)
    return ShapedLink


def _netem_params(c: LinkConditions) -> dict:
    """What Mininet's TCLink passes to netem for *c* (conditions_mode says it can)."""
    return {k: v for k, v in (("delay", f"{c.delay_ms or 0}ms"), ("jitter", f"{c.jitter_ms}ms" if c.jitter_ms else None),
                              ("loss", c.loss * 100 or None)) if v}


def _quiet(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


def existing_netns() -> set[str]:
    out = _quiet(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def existing_ifaces() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


def _check(argv: list[str], what: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise TunnelwallError(f"{what}: '{' '.join(argv)}' failed: {res.stderr.strip()}")


def _tx_off_root(ifaces: list[str]) -> None:
    if not ifaces:
        return
    script = "; ".join(f"ethtool -K {i} tx off >/dev/null 2>&1; "
                       f"echo 1 > /proc/sys/net/ipv6/conf/{i}/disable_ipv6 2>/dev/null" for i in ifaces)
    subprocess.run(["sh", "-c", script], capture_output=True)


def _require_ovs() -> None:
    res = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True, text=True)
    if res.returncode != 0:
        raise EnvironmentProblem("Open vSwitch is not running: run scripts/setup.sh (it starts ovs-ctl "
                                 "without the kernel module), or '/usr/share/openvswitch/scripts/ovs-ctl start'")
