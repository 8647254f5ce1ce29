"""Bringing a topology up and down: backend + services + censor, recorded
in a run state so that ``down`` and ``cleanup`` can undo all of it."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tunnelwall import topologies
from tunnelwall.topologies import datapath
from tunnelwall.topologies.layout import plan_layout
from tunnelwall.topologies.model import Topology

from tunnelwall.runtime import cleanup
from tunnelwall.base import procs
from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError
from tunnelwall.base.runstate import RunState, active_run, new_run


@dataclass
class UpOptions:
    topology: str = topologies.DEFAULT
    profile: str | None = None        # None: the topology's own censor profile
    no_censor: bool = False           # build the same network with no controller/middlebox
    placement: str | None = None      # override the topology's tap/inline
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)   # RULE.FIELD=VALUE
    scope: str | None = ""            # "": the default run; one of runstate.SCOPES; None: the first free one
    datapath: str | None = None       # Open vSwitch's (auto, kernel, user); None: $TUNNELWALL_DATAPATH or auto


def require_root() -> None:
    import os
    if os.geteuid() != 0:
        raise EnvironmentProblem("tunnelwall needs root (network namespaces, Open vSwitch)")


def up(opts: UpOptions) -> RunState:
    require_root()
    topo = topologies.resolve(opts.topology)
    profile = None
    if topo.censor and not opts.no_censor:
        from tunnelwall.middlebox import profiles
        profile = profiles.apply_overrides(profiles.load(opts.profile or topo.censor.profile), opts.overrides)
    elif opts.profile and not topo.censor:
        raise TunnelwallError(f"topology '{topo.name}' has no censor section, so --profile cannot apply")
    kind = datapath.resolve(opts.datapath)      # before anything is created: a wrong ask fails clean
    state = new_run(topo.source, profile.name if profile else None, opts.scope)
    state.datapath = kind
    t0 = time.monotonic()
    try:
        with procs.signals_as_interrupts():
            # Planned once, here: the controller's forwarding table and the backend both follow it.
            layout = plan_layout(topo, controlled=profile is not None, scope=state.scope, datapath=kind)
            controller_addr = None
            censor = None
            if profile is not None:
                from tunnelwall.runtime import censor as censor_mod
                censor = censor_mod.CensorRuntime(state, topo, profile, placement=opts.placement, seed=opts.seed,
                                                  overrides=opts.overrides)
                controller_addr = censor.start_controller(layout)
            topologies.backend_for(state).deploy(
                topo, layout, controller=controller_addr,
                fail_mode="standalone" if profile and profile.fail == "open" else "secure")
            if censor is not None:
                censor.start_middlebox()
            start_services(state, topo)
            state.status = "up"
            state.up_seconds = round(time.monotonic() - t0, 3)
            state.save()
            if censor is not None:
                procs.spawn(state, "supervisor", [sys.executable, "-m", "tunnelwall.runtime.supervisor",
                                                  "--run", state.run_id])
    except BaseException as err:
        cleanup.teardown(state)
        if isinstance(err, KeyboardInterrupt):
            raise TunnelwallError("interrupted; everything created so far was removed") from None
        if isinstance(err, TunnelwallError):
            raise
        raise TunnelwallError(f"bringing up '{topo.name}' failed: {type(err).__name__}: {err} "
                              f"(logs: {state.log_dir})") from err
    return state


def down(state: RunState | None = None) -> list[str]:
    """Tear down *state* (default: the run active_run() picks)."""
    require_root()
    state = state or active_run()
    if state is None:
        return []
    return cleanup.teardown(state)


# ---------------------------------------------------------------------------
# services on outside servers

# Names the outside DNS server knows: famous (and often censored) names point
# to the first outside web server, and every node is <node>.tw.
FAMOUS_NAMES = ("www.twitter.com", "twitter.com", "www.wikipedia.org", "www.youtube.com", "blocked.example",
                "www.example.org", "example.org")
# Ordinary names, on no profile's blocklist, for benign traffic (tunnelwall
# collateral); some contain "t.co" (microsoft.com, reddit.com), which a loose
# glob such as Russia's 2021 "*t.co*" catches.
BENIGN_NAMES = ("www.example.org", "www.microsoft.com", "www.reddit.com", "news.example.com", "mail.example.net",
                "cdn.example.org", "shop.example.com", "docs.example.org", "www.outlook.com", "portal.azure.com",
                "www.bbc.co.uk", "weather.example.net", "www.github.com", "maps.example.org", "www.python.org")
DNS_DELAY = 0.05   # the resolver is "abroad": forged answers from the border arrive first


def start_services(state: RunState, topo: Topology) -> None:
    web = next((n for n in topo.hosts() if "http" in n.services), None)
    zone = {f"{n.name}.tw": str(n.primary_ip()) for n in topo.hosts() if n.primary_ip()}
    if web is not None:
        zone.update({name: str(web.primary_ip()) for name in FAMOUS_NAMES + BENIGN_NAMES})
    for node in topo.hosts():
        if "dns" in node.services:
            rec = procs.spawn(state, f"dns-{node.name}", [sys.executable, "-m", "tunnelwall.services.dnsserver", "--zone",
                                                         ",".join(f"{k}={v}" for k, v in zone.items()),
                                                         "--delay", str(DNS_DELAY)], netns=state.netns_of(node.name),
                              host_binaries=True)
            wait_listening(state.netns_of(node.name), 53, rec)
        if not ({"http", "https"} & set(node.services)):
            continue
        ns = state.netns_of(node.name)
        argv = [sys.executable, "-m", "tunnelwall.services.webserver"]
        if "http" in node.services:
            argv += ["--http", "80"]
        if "https" in node.services:
            cert, key = tls_certificate(state, f"{node.name}.example")
            argv += ["--https", "443", "--cert", str(cert), "--key", str(key)]
        rec = procs.spawn(state, f"web-{node.name}", argv, netns=ns, host_binaries=True)
        for port in (80, 443):
            if ("http" if port == 80 else "https") in node.services:
                wait_listening(ns, port, rec)
    start_traffic(state, topo, web)


def start_traffic(state: RunState, topo: Topology, web) -> None:
    """Background traffic (``traffic:`` on client nodes): ordinary users'
    connections to the outside web server, logged to traffic-NODE.jsonl in
    the run's log directory (``tunnelwall collateral --run-log`` sums it up)."""
    senders = [n for n in topo.hosts() if n.traffic is not None]
    if not senders:
        return
    if web is None or not web.primary_ip():
        raise TunnelwallError("traffic: needs an outside server with the http service to talk to")
    if any("quic" in n.traffic.mix for n in senders):
        # No QUIC server here: a UDP echo on udp/443 tells a first flight that it arrived.
        rec = procs.spawn(state, f"udp-echo-{web.name}", [sys.executable, "-m", "tunnelwall.services.udpecho",
                                                          "--port", "443"], netns=state.netns_of(web.name),
                          host_binaries=True)
        wait_listening(state.netns_of(web.name), 443, rec, udp=True)
    for i, node in enumerate(senders):
        log = state.logs / f"traffic-{node.name}.jsonl"
        procs.spawn(state, f"traffic-{node.name}",
                    [sys.executable, "-m", "tunnelwall.services.traffic", "--web", str(web.primary_ip()),
                     "--names", ",".join(BENIGN_NAMES), "--mix", ",".join(node.traffic.mix),
                     "--per-minute", str(node.traffic.per_minute), "--seed", str(i + 1), "--log", str(log)],
                    netns=state.netns_of(node.name), host_binaries=True)


def tls_certificate(state: RunState, common_name: str) -> tuple[Path, Path]:
    """A self-signed certificate for *common_name* in the run's directory."""
    d = state.logs / "certs"
    d.mkdir(exist_ok=True)
    cert, key = d / f"{common_name}.crt", d / f"{common_name}.key"
    if not cert.exists():
        procs.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-days", "3", "-subj", f"/CN={common_name}", "-addext",
                   f"subjectAltName=DNS:{common_name}", "-keyout", str(key), "-out", str(cert)])
    return cert, key


def listening(netns: str | None, port: int, udp: bool = False) -> bool:
    res = subprocess.run(procs.in_netns(netns, ["ss", "-H", "-lun" if udp else "-ltn", f"sport = :{port}"],
                                        host_binaries=True),
                         capture_output=True, text=True)
    return bool(res.stdout.strip())


def wait_listening(netns: str | None, port: int, rec=None, timeout: float = 10.0, udp: bool = False) -> None:
    procs.wait_started(rec, lambda: listening(netns, port, udp), timeout, f"port {port} listening in {netns}")


def exec_in(node: str, argv: list[str], timeout: float | None = None, state: RunState | None = None):
    """Run a command in a node's namespace of the active run."""
    state = state or active_run()
    if state is None:
        raise TunnelwallError("no run is up (tunnelwall up TOPO)")
    if node not in state.nodes:
        raise TunnelwallError(f"no node '{node}' in the running topology (nodes: {', '.join(state.nodes)})")
    return subprocess.run(procs.in_netns(state.netns_of(node), argv), timeout=timeout)
