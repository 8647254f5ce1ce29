"""Running one tool through the running topology and judging the outcome.

Outcome, per tool (``ToolResult.outcome``):

* ``PASSED``   the transfer completed and no blocking or throttling verdict hit its flows;
* ``BLOCKED``  the transfer failed or was cut, and the censor blocked a flow of the tool;
* ``DEGRADED`` the transfer completed but was throttled, or was cut with no verdict to explain it;
* ``ERROR``    the tool itself failed (a program missing or exiting, no connection and
               no verdict to explain it): never reported as "blocked".
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunnelwall.base import procs
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.runstate import RunState
from tunnelwall.base.verdict import ANY_CLIENT, LoggedVerdict
from tunnelwall.harness.spec import SAFE_VALUE, Ready, Side, ToolSpec

PASSED, BLOCKED, DEGRADED, ERROR = "PASSED", "BLOCKED", "DEGRADED", "ERROR"


@dataclass
class ToolResult:
    tool: str
    profile: str | None
    outcome: str = ERROR
    connected: bool = False
    bytes_expected: int = 0
    bytes_through: int = 0
    seconds: float = 0.0
    mbit_s: float = 0.0
    detected: bool = False
    rule: str | None = None
    action: str | None = None
    protocol: str | None = None
    packets_to_detection: int | None = None
    ms_to_detection: float | None = None
    confirmed_by_probing: bool | None = None
    spared_by: list = field(default_factory=list)    # rules that matched but lost their probability draw
    probe_fingerprint: str | None = None
    after_probing_bytes: int | None = None           # a second fetch once probing confirmed the server
    error: str = ""
    log: str = ""
    verdicts: list = field(default_factory=list)
    trial: int = 1                                   # which of verify --trials N this was
    unsupported: bool = False                        # ERROR because this machine lacks a requirement
    cell: int | None = None                          # its number in the verify matrix (harness.matrix)
    description: str = ""
    inner: str = ""                                  # what went through: "https" or "http" (RunOptions.inner,
                                                     # or "http" where the target serves no HTTPS)
    note: str = ""                                   # why the run differs from what was asked (inner traffic)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "ToolResult":
        """A result back from its JSON form (fields of other versions ignored)."""
        return cls(**{k: v for k, v in row.items() if k in cls.__dataclass_fields__})


@dataclass
class RunOptions:
    bytes: int = 2_000_000
    client_node: str | None = None
    server_node: str | None = None
    ipv6: bool = False             # address the server and the web server by their IPv6 addresses
    requests: int | None = None    # override the tool's traffic.requests (1: one connection per trial)
    inner: str = "https"           # what goes through: "https" (traffic.url) or "http" (traffic.http_url where given)


def traffic_url(spec: ToolSpec, inner: str) -> str:
    """The URL template of what goes through *spec*: its ``url`` (HTTPS, by
    default) or, for ``inner`` "http", its ``http_url`` where it has one."""
    if inner not in ("https", "http"):
        raise TunnelwallError(f"inner traffic is 'https' or 'http', not '{inner}'")
    return spec.http_url if inner == "http" and spec.http_url else spec.url


def _default_node(state: RunState, role: str, prefer: str | None = None) -> str:
    if prefer and prefer in state.nodes:
        return prefer
    found = state.layout.by_role(role)
    if found:
        return found[0]
    raise TunnelwallError(f"the topology has no {role} node")


def _ip(state: RunState, node: str, ipv6: bool = False) -> str:
    for iface in state.nodes[node].interfaces.values():
        address = iface.ip6 if ipv6 else iface.ip
        if address:
            return address
    raise TunnelwallError(f"node '{node}' has no {'IPv6 ' if ipv6 else ''}address")


def listens_on(netns: str | None, port: int) -> bool:
    """Whether a TCP socket listens on *port* in *netns* (any address)."""
    res = subprocess.run(procs.in_netns(netns, ["ss", "-Hltn", f"sport = :{port}"]), capture_output=True, text=True,
                         timeout=10)
    if res.returncode != 0:
        raise TunnelwallError(f"ss in {netns or 'the host'}: {res.stderr.strip() or f'exit {res.returncode}'}")
    return bool(res.stdout.strip())


def _ip_or_none(state: RunState, node: str, ipv6: bool) -> str | None:
    try:
        return _ip(state, node, ipv6)
    except TunnelwallError:
        return None


def _host(address: str) -> str:
    """An address as the host part of a URL or HOST:PORT (RFC 3986: IPv6 in brackets)."""
    return f"[{address}]" if ":" in address else address


def _web_node(state: RunState, server: str) -> str:
    if "web" in state.nodes:
        return "web"
    servers = state.layout.by_role("server")
    return next((n for n in servers if n != server), server)


WARMUP_BYTES = 1000


class ToolRun:
    """One tool's processes on one running topology."""

    def __init__(self, state: RunState, spec: ToolSpec, opts: RunOptions | None = None):
        self.state, self.spec = state, spec
        self.opts = opts or RunOptions()
        self.server = opts.server_node if opts and opts.server_node else _default_node(state, "server", spec.server_node or "vpn")
        self.client = opts.client_node if opts and opts.client_node else _default_node(state, "client", spec.client_node)
        short = secrets.token_hex(2)
        self.workdir = state.logs / "tools" / f"{spec.name}-{short}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        v6 = self.opts.ipv6
        server_ip, web_ip = _ip(state, self.server, v6), _ip(state, _web_node(state, self.server), v6)
        self.helper = spec.helper_node if spec.helper_node in state.nodes else _web_node(state, self.server)
        helper_ip = _ip(state, self.helper, v6)
        # Every address of the tool's nodes in both families, where they have
        # one: a WebRTC tool's ICE picks IPv4 or IPv6 by itself.
        self.addresses = {n: {a for a in (_ip_or_none(state, n, False), _ip_or_none(state, n, True)) if a}
                          for n in {self.server, self.client, self.helper, _web_node(state, self.server)}}
        self.values = {"server_ip": server_ip, "client_ip": _ip(state, self.client, v6), "web_ip": web_ip,
                       "server_host": _host(server_ip), "web_host": _host(web_ip), "family": 6 if v6 else 4,
                       "workdir": str(self.workdir),
                       "bytes": self.opts.bytes, "id": short, "server_node": self.server,
                       "client_node": self.client, "python": sys.executable,
                       "helper_ip": helper_ip, "helper_host": _host(helper_ip), "helper_node": self.helper,
                       "spec_dir": str(Path(spec.source).resolve().parent),
                       "tools_dir": str(Path(__file__).resolve().parents[1] / "tools")}
        self.values.update({k: spec.render(v, {**self.values, **spec.vars}) for k, v in spec.vars.items()})
        self.records = []
        self.inner = ""            # decided once the servers run (inner_traffic)

    def render(self, text):
        return self.spec.render(text, self.values)

    def env(self) -> dict[str, str]:
        """The environment of the tool's commands: PATH starts with the
        folders of the Go programs it requires (built outside the repository)."""
        prefix = self.spec.path_prefix()
        if not prefix:
            return dict(os.environ)
        return {**os.environ, "PATH": os.pathsep.join([*prefix, os.environ.get("PATH", os.defpath)])}

    def own(self, verdicts: list[LoggedVerdict]) -> list[LoggedVerdict]:
        """The verdicts on flows between this tool's client and its server,
        or the web server it fetches from (the control, https, talks to it
        directly)."""
        clients = {self.values["client_ip"]}
        servers = {self.values["server_ip"], self.values["web_ip"]}
        if self.spec.helper is None:
            return [lv for lv in verdicts if lv.verdict.flow.client in clients and lv.verdict.flow.server in servers]
        # The helper's flows are the tool's too (Snowflake's DTLS to its
        # proxy), in either family (ICE chooses the pair itself) and either
        # orientation: the censor's "client" of a UDP flow is whichever end
        # sent first, and the proxy's connectivity check often arrives first.
        clients |= self.addresses[self.client]
        servers |= self.addresses[self.helper] | self.addresses[self.server]
        helper = self.addresses[self.helper]
        return [lv for lv in verdicts
                if (lv.verdict.flow.client in clients and lv.verdict.flow.server in servers)
                or (lv.verdict.flow.client in helper and lv.verdict.flow.server in clients)]

    # -- lifecycle -----------------------------------------------------
    def check_requirements(self) -> None:
        unmet = self.spec.unmet_requirements()
        if unmet:
            raise Unsupported(f"tool '{self.spec.name}' cannot run here: {'; '.join(unmet)}")

    def prepare(self) -> None:
        if self.spec.prepare:
            self._sh(None, self.render(self.spec.prepare), "prepare")

    def start_side(self, which: str, log_name: str | None = None) -> None:
        side: Side | None = getattr(self.spec, which)
        if side is None:
            return
        ns = self.state.netns_of(self._node(which))
        if side.run:
            env = {**self.env(), **{k: self.render(v) for k, v in side.env.items()}}
            rec = procs.spawn(self.state, f"{self.spec.name}-{which}", ["sh", "-c", "exec " + self.render(side.run)],
                              netns=ns, env=env, cwd=str(self.workdir), log=self.workdir / (log_name or f"{which}.log"))
            self.records.append(rec)
        if side.setup:
            self._sh(ns, self.render(side.setup), f"{which} setup")

    def wait_ready(self, which: str, blocked=None, log_name: str | None = None) -> bool:
        """Poll until *which* is ready. *blocked*: returns the time of a
        blocking verdict on the tool's flows, if any; waiting stops 2 s after
        one (a blocked handshake never completes, so the full timeout would
        only slow the matrix down)."""
        side: Side | None = getattr(self.spec, which)
        if side is None or side.ready is None:
            return True
        ready: Ready = side.ready
        ns = self.state.netns_of(self._node(which))
        deadline = time.monotonic() + ready.timeout
        log = self.workdir / (log_name or f"{which}.log")
        next_check = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            self._raise_if_exited(which)
            if self._is_ready(ready, ns, log):
                return True
            if blocked is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                when = blocked()
                if when is not None and time.time() - when > 2.0:
                    return False
            time.sleep(0.1)
        return False

    def _node(self, which: str) -> str:
        return {"server": self.server, "client": self.client, "helper": self.helper}[which]

    def _is_ready(self, ready: Ready, ns: str, log: Path) -> bool:
        from tunnelwall.runtime.network import listening
        if ready.tcp and not listening(ns, int(self.render(ready.tcp))):
            return False
        if ready.udp and not listening(ns, int(self.render(ready.udp)), udp=True):
            return False
        if ready.log:
            try:
                if not re.search(self.render(ready.log), log.read_text(errors="replace")):
                    return False
            except FileNotFoundError:
                return False
        if ready.command:
            res = subprocess.run(procs.in_netns(ns, ["sh", "-c", self.render(ready.command)], cwd=str(self.workdir)),
                                 cwd=self.workdir, env=self.env(),
                                 capture_output=True, timeout=30)
            if res.returncode != 0:
                return False
        return True

    def _raise_if_exited(self, which: str) -> None:
        for rec in self.records:
            if rec.name.endswith(which) and procs.exited(rec) is not None:
                raise ToolError(f"{which} '{rec.argv[-1][5:]}' exited", procs.tail(rec.log))

    def capture(self) -> None:
        """Read the values the tool only reveals once running (a generated
        certificate, a port it chose) into variables."""
        deadline = time.monotonic() + 10
        for name, cap in self.spec.captures.items():
            path = self.workdir / (self.render(cap["file"]) if "file" in cap else f"{cap['log']}.log")
            while True:
                try:
                    m = re.search(cap["regex"], path.read_text(errors="replace"))
                except FileNotFoundError:
                    m = None
                if m:
                    value = m.group(1)
                    if not SAFE_VALUE.match(value):
                        raise ToolError(f"capture '{name}': the value {value[:60]!r} has characters that are not "
                                        f"safe in a command (allowed: letters, digits and + / = : . , _ @ % -)",
                                        procs.tail(path))
                    self.values[name] = value
                    break
                if time.monotonic() > deadline:
                    raise ToolError(f"capture '{name}': /{cap['regex']}/ not found in {path.name}",
                                    procs.tail(path))
                time.sleep(0.1)

    def target_node(self) -> str | None:
        """The node that answers the traffic's URL: the outside web server
        ({web_ip}/{web_host}), the tool's server ({net}.1, an address on the
        tunnel's far end, or {server_ip}); None for a fixed local forward."""
        url = self.spec.url or ""
        if "{web_ip}" in url or "{web_host}" in url:
            return _web_node(self.state, self.server)
        if "{net}" in url or "{server_ip}" in url or "{server_host}" in url:
            return self.server
        return None

    def inner_traffic(self) -> tuple[str, str]:
        """("https" or "http", why): HTTPS as asked unless the node that
        answers the URL listens on no TCP port 443 (a user's topology whose
        server has only `services: [http]`) and the tool offers plain HTTP;
        then plain HTTP, said in the result, instead of an ERROR that would
        blame the tool."""
        if self.opts.inner != "https" or not self.spec.http_url:
            return self.opts.inner, ""
        node = self.target_node()
        if node is None or listens_on(self.state.netns_of(node), 443):
            return "https", ""
        return "http", f"{node} serves no HTTPS (nothing listens on TCP 443): plain HTTP went through"

    def traffic(self) -> tuple[int, float, str]:
        """(bytes received, seconds, error) of the measured fetch through the
        tool, after the spec's small warm-up requests."""
        requests = self.opts.requests or self.spec.requests
        for i in range(requests - 1):
            got, _seconds, err = self._fetch(WARMUP_BYTES)
            if err or got < WARMUP_BYTES:
                return 0, 0.0, f"request {i + 1} of {requests}: {err or f'{got} of {WARMUP_BYTES} bytes'}"
        return self._fetch(None)

    def _fetch(self, size: int | None) -> tuple[int, float, str]:
        inner = self.inner or self.opts.inner
        url = self.spec.render(traffic_url(self.spec, inner), self.values if size is None else {**self.values, "bytes": size})
        cmd = ["curl", "-g", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
               "--max-time", str(int(self.spec.traffic_timeout)), "--connect-timeout", "8",
               # A blocked transfer stalls: give up after 6 s below 1 byte/s.
               "--speed-limit", "1", "--speed-time", "6"]
        if self.spec.socks5:
            cmd += ["--socks5-hostname", self.render(self.spec.socks5)]
        if self.spec.proxy_user:
            cmd += ["--proxy-user", self.render(self.spec.proxy_user)]
        if self.spec.insecure:
            cmd.append("-k")
        res = subprocess.run(procs.in_netns(self.state.netns_of(self.client), cmd + [url]), capture_output=True, text=True,
                             timeout=self.spec.traffic_timeout + 15)
        try:
            code, size, seconds = res.stdout.split()
            return int(float(size)), float(seconds), "" if code == "200" else f"HTTP {code}, curl exit {res.returncode}"
        except ValueError:
            return 0, 0.0, f"curl exit {res.returncode}: {res.stderr.strip()}"

    def stop(self) -> None:
        for rec in reversed(self.records):
            procs.stop(rec, timeout=2.0)

    def _sh(self, ns: str | None, script: str, what: str) -> None:
        res = subprocess.run(procs.in_netns(ns, ["sh", "-ec", script], cwd=str(self.workdir)), cwd=self.workdir,
                             env=self.env(), capture_output=True,
                             text=True, timeout=60)
        (self.workdir / f"{what.replace(' ', '-')}.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            raise ToolError(f"{what} failed (exit {res.returncode})", (res.stderr or res.stdout).strip()[-2000:])


class Unsupported(TunnelwallError):
    """This machine lacks a program or kernel feature the tool requires."""


class ToolError(Exception):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def run_tool(state: RunState, spec: ToolSpec, opts: RunOptions | None = None, api=None) -> ToolResult:
    """Run *spec* on the running topology and judge it."""
    opts = opts or RunOptions()
    result = ToolResult(tool=spec.name, profile=state.profile, bytes_expected=opts.bytes, description=spec.description)
    started = time.time()
    run = None
    try:
        run = ToolRun(state, spec, opts)
        run.check_requirements()
        run.prepare()
        run.start_side("server")
        if not run.wait_ready("server"):
            raise ToolError("server did not become ready", procs.tail(run.workdir / "server.log"))
        run.start_side("helper")
        if not run.wait_ready("helper"):
            raise ToolError("helper did not become ready", procs.tail(run.workdir / "helper.log"))
        run.start_side("client")
        client_ready = run.wait_ready("client", blocked=_blocking_verdict_probe(state, run, started, api))
        if client_ready:
            run.capture()
        run.inner, why = run.inner_traffic()
        result.inner = run.inner
        result.note = why
        got, seconds, err = run.traffic() if client_ready else (0, 0.0, "client never became ready")
        run._raise_if_exited("server")
        probe = _await_probe(state, run, started, api)
        if probe is not None:
            result.confirmed_by_probing = probe["confirmed"]
            result.probe_fingerprint = probe["fingerprint"]
            if probe["confirmed"] and got >= opts.bytes:
                # The GFW blocks a confirmed server for everyone: a new connection fails.
                again, _s, err2 = run.traffic()
                result.after_probing_bytes = again
                if again < opts.bytes:
                    err = f"blocked after active probing confirmed a {probe['fingerprint']} server ({err2})"
        result.bytes_through, result.seconds = got, round(seconds, 3)
        result.connected = got > 0
        result.mbit_s = round(got * 8 / seconds / 1e6, 1) if seconds > 0 and got else 0.0
        result.error = err if got < opts.bytes else ""
    except ToolError as err:
        result.outcome, result.error, result.log = ERROR, str(err), err.log
    except Unsupported as err:
        result.outcome, result.error, result.unsupported = ERROR, str(err), True
    except TunnelwallError as err:
        result.outcome, result.error = ERROR, str(err)
    finally:
        if run is not None:
            run.stop()
    if run is not None:
        _attach_verdicts(result, state, run, started, api)
    if not (result.outcome == ERROR and result.error and not result.connected and not result.detected):
        result.outcome = judge(result)
    if result.outcome == ERROR and not result.log and run is not None:
        result.log = "\n".join(f"[{p.name}] {procs.tail(p, 8)}" for p in sorted(run.workdir.glob("*.log")))
    return result


def judge(r: ToolResult) -> str:
    if r.confirmed_by_probing and r.after_probing_bytes is not None and r.after_probing_bytes < r.bytes_expected:
        return BLOCKED
    # Probing confirmed the server, so the censor blocks it for every client:
    # a fetch that fell short was cut by that block (a Tor client whose
    # guard was confirmed while it was still building circuits gets 0 bytes).
    blocking = r.action in ("drop", "reset") or bool(r.confirmed_by_probing)
    complete = r.bytes_through >= r.bytes_expected > 0
    if complete:
        return DEGRADED if r.action == "throttle" else PASSED
    if blocking:
        # Bytes may pass before an on-path verdict lands (tap placement); the
        # tool still failed to deliver.
        return BLOCKED
    if r.bytes_through > 0:
        return DEGRADED
    if not r.error:
        r.error = "no data came through, and the censor did not block the tool: see the tool's logs"
    return ERROR


def _await_probe(state: RunState, run: ToolRun, since: float, api) -> dict | None:
    """If the censor decided to probe the tool's server, wait (while the
    server still runs) for the prober's result."""
    if not state.api:
        return None
    from tunnelwall.runtime.api import Api
    api = api or Api(state)
    try:
        wanted = [lv for lv in run.own(api.logged_verdicts(since=since - 0.001))
                  if lv.verdict.action == "probe" and lv.probe_requested]
    except TunnelwallError:
        return None
    if not wanted:
        return None
    port = wanted[0].verdict.flow.server_port
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            for p in api.call("/api/probes"):
                if p["server"] == run.values["server_ip"] and p["server_port"] == port and p["time"] >= since:
                    return p
        except TunnelwallError:
            return None
        time.sleep(0.3)
    return None


def _blocking_verdict_probe(state: RunState, run: ToolRun, since: float, api):
    """A function returning the time of the first blocking verdict between
    the tool's client and server since *since*, or None."""
    if not state.api:
        return None
    from tunnelwall.runtime.api import Api
    api = api or Api(state)
    def probe():
        try:
            verdicts = api.logged_verdicts(since=since - 0.001)
        except TunnelwallError:
            return None
        times = [lv.time for lv in run.own(verdicts) if lv.verdict.blocks]
        return min(times) if times else None
    return probe


def _settled_verdicts(api, since: float, seconds: float = 1.0) -> list[LoggedVerdict]:
    """The verdicts since *since*, once the list stops growing: the last
    ones are still on their way from the middlebox when the tool stops. Two
    equal answers 50 ms apart, or *seconds* at most."""
    deadline = time.monotonic() + seconds
    verdicts = api.logged_verdicts(since=since - 0.001)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        again = api.logged_verdicts(since=since - 0.001)
        if len(again) == len(verdicts):
            return again
        verdicts = again
    return verdicts


def _attach_verdicts(result: ToolResult, state: RunState, run: ToolRun, since: float, api) -> None:
    if not state.api:
        return
    from tunnelwall.runtime.api import Api
    api = api or Api(state)
    try:
        verdicts = _settled_verdicts(api, since)
    except TunnelwallError:
        return
    mine = run.own(verdicts)
    result.verdicts = [lv.record for lv in mine]          # the results file keeps the logged lines whole
    for lv in mine:
        note = lv.verdict.note
        if note.startswith("spared by probability: "):
            for rule in note.split(": ", 1)[1].split(", "):
                if rule not in result.spared_by:
                    result.spared_by.append(rule)
    hits = [lv for lv in mine if lv.verdict.rule]
    if not hits:
        # A residual block from an earlier flow drops packets at the switch,
        # before the middlebox sees them: the controller's block list says so.
        try:
            blocks = api.residual_blocks()
        except TunnelwallError:
            blocks = []
        port = run.values.get("port")
        for b in blocks:
            if b.client in (run.values["client_ip"], ANY_CLIENT) and b.server == run.values["server_ip"] \
                    and port is not None and str(b.server_port) == str(port):
                result.detected, result.rule, result.action = True, b.rule, "drop"
                left = b.seconds_left(time.time())
                left = f"{left:.0f}s left" if left is not None else "for the run"
                result.error = result.error or f"residual block of {b.server}:{b.server_port} " \
                                               f"({left}) from an earlier flow"
                return
        return
    order = {"drop": 0, "reset": 0, "probe": 1, "throttle": 2, "forge-dns": 3, "log": 4}
    first = min(hits, key=lambda lv: (order.get(lv.verdict.action, 5), lv.time)).verdict
    result.detected = True
    result.rule, result.action, result.protocol = first.rule, first.action, first.protocol
    result.packets_to_detection, result.ms_to_detection = first.packet_index, first.ms
    if result.confirmed_by_probing and result.after_probing_bytes is not None \
            and result.after_probing_bytes < result.bytes_expected:
        result.rule, result.action = f"{first.rule}+probe", "drop"
