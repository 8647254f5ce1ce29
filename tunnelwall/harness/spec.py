"""Tool definitions: what to start on the server and client, when each is
ready, and how to push traffic through. One YAML file per tool::

    name: shadowsocks
    description: Shadowsocks (shadowsocks-libev), AEAD chacha20-ietf-poly1305
    requires: [ss-server, ss-local]
    vars: {port: 8388, password: tunnelwall}
    server:
      run: ss-server -s 0.0.0.0 -p {port} -k {password} -m chacha20-ietf-poly1305
      ready: {tcp: "{port}"}
    client:
      run: ss-local -s {server_ip} -p {port} -l 1080 -k {password} -m chacha20-ietf-poly1305
      ready: {tcp: 1080}
    traffic: {url: "http://{web_ip}/bytes/{bytes}", socks5: "127.0.0.1:1080"}

``{name}`` (lowercase) is replaced by a variable: the built-ins below or the
tool's ``vars``; shell syntax such as ``${HOME}`` or ``$(cat key.pub)`` is
left to the shell. Commands run with ``sh -ec`` in the tool's work dir:
``prepare`` on the host (key generation), ``setup`` inside the node's
namespace after its ``run`` process started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunnelwall import yamlsrc
from tunnelwall.errors import SourceError, TunnelwallError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "tools"
BUILTIN_VARS = {"server_ip", "client_ip", "web_ip", "workdir", "bytes", "id", "server_node", "client_node",
                "python", "spec_dir", "tools_dir"}
VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
TOP_KEYS = {"name", "description", "requires", "vars", "prepare", "server", "client", "traffic", "timeout",
            "server_node", "client_node", "expect"}
SIDE_KEYS = {"run", "env", "setup", "ready"}
READY_KEYS = {"tcp", "udp", "log", "command", "timeout"}
TRAFFIC_KEYS = {"url", "socks5", "insecure", "timeout"}


@dataclass
class Ready:
    tcp: str | None = None
    udp: str | None = None
    log: str | None = None          # a regex the side's log must show
    command: str | None = None      # succeeds once ready
    timeout: float = 15.0


@dataclass
class Side:
    run: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    setup: str | None = None
    ready: Ready | None = None


@dataclass
class ToolSpec:
    name: str
    description: str = ""
    requires: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    prepare: str | None = None
    server: Side | None = None
    client: Side | None = None
    url: str = ""
    socks5: str | None = None
    insecure: bool = False
    traffic_timeout: float = 30.0
    server_node: str | None = None
    client_node: str | None = None
    source: str = ""

    def render(self, text: str | None, values: dict[str, Any]) -> str | None:
        if text is None:
            return None

        def sub(m):
            key = m.group(1)
            if key not in values:
                raise TunnelwallError(f"{self.source}: unknown variable {{{key}}} (known: {', '.join(sorted(values))})")
            return str(values[key])
        return VAR.sub(sub, text)


def builtin() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def load(spec: str) -> ToolSpec:
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml"):
        if spec not in builtin():
            raise TunnelwallError(f"unknown tool '{spec}' (built-in: {', '.join(builtin())}; or a path to a tool .yaml)")
        path = builtin()[spec]
    return from_data(yamlsrc.load(path), str(path))


def _text(path: str, data, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)):
        raise SourceError(path, data.line_of(key), f"{key}: expected text")
    return str(value)


def _ready(path: str, parent, where: str) -> Ready | None:
    spec = parent.get("ready")
    if spec is None:
        return None
    if not isinstance(spec, yamlsrc.Mapping) or not (set(spec) & (READY_KEYS - {"timeout"})):
        raise SourceError(path, parent.line_of("ready"), f"{where}.ready: give one of tcp, udp, log or command")
    for key in spec:
        if key not in READY_KEYS:
            raise SourceError(path, spec.line_of(key), f"{where}.ready: unknown field '{key}' ({', '.join(sorted(READY_KEYS))})")
    ready = Ready(**{k: str(v) for k, v in spec.items() if k != "timeout"})
    if "timeout" in spec:
        if isinstance(spec["timeout"], bool) or not isinstance(spec["timeout"], (int, float)) or spec["timeout"] <= 0:
            raise SourceError(path, spec.line_of("timeout"), f"{where}.ready.timeout: expected seconds > 0")
        ready.timeout = float(spec["timeout"])
    return ready


def _side(path: str, data, key: str) -> Side | None:
    spec = data.get(key)
    if spec is None:
        return None
    if not isinstance(spec, yamlsrc.Mapping):
        raise SourceError(path, data.line_of(key), f"{key}: expected a mapping with run/setup/ready")
    for k in spec:
        if k not in SIDE_KEYS:
            raise SourceError(path, spec.line_of(k), f"{key}: unknown field '{k}' (expected one of: {', '.join(sorted(SIDE_KEYS))})")
    env = spec.get("env", {})
    if not isinstance(env, dict):
        raise SourceError(path, spec.line_of("env"), f"{key}.env: expected a mapping")
    return Side(run=_text(path, spec, "run"), env={str(k): str(v) for k, v in env.items()},
                setup=_text(path, spec, "setup"), ready=_ready(path, spec, key))


def from_data(data, path: str) -> ToolSpec:
    if not isinstance(data, yamlsrc.Mapping):
        raise SourceError(path, yamlsrc.line_of(data, 1), "a tool definition must be a mapping with 'name' and 'traffic'")
    for key in data:
        if key not in TOP_KEYS:
            raise SourceError(path, data.line_of(key), f"unknown top-level key '{key}' (expected one of: {', '.join(sorted(TOP_KEYS))})")
    for key in ("name", "traffic"):
        if key not in data:
            raise SourceError(path, data.line, f"missing '{key}'")
    requires = data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SourceError(path, data.line_of("requires"), "requires: expected a list of program names")
    variables = data.get("vars", {})
    if not isinstance(variables, dict):
        raise SourceError(path, data.line_of("vars"), "vars: expected a mapping")
    for name in variables:
        if not re.match(r"^[a-z_][a-z0-9_]*$", str(name)):
            raise SourceError(path, variables.line_of(name), f"vars: '{name}' must be lowercase letters, digits and '_'")
        if name in BUILTIN_VARS:
            raise SourceError(path, variables.line_of(name), f"vars: '{name}' is a built-in variable")
    traffic = data["traffic"]
    if not isinstance(traffic, yamlsrc.Mapping) or "url" not in traffic:
        raise SourceError(path, data.line_of("traffic"), "traffic: expected a mapping with 'url'")
    for key in traffic:
        if key not in TRAFFIC_KEYS:
            raise SourceError(path, traffic.line_of(key), f"traffic: unknown field '{key}' (expected one of: {', '.join(sorted(TRAFFIC_KEYS))})")
    spec = ToolSpec(name=str(data["name"]), description=str(data.get("description", "")), requires=list(requires),
                    vars={str(k): str(v) for k, v in variables.items()}, prepare=_text(path, data, "prepare"),
                    server=_side(path, data, "server"), client=_side(path, data, "client"),
                    url=str(traffic["url"]), socks5=traffic.get("socks5"), insecure=bool(traffic.get("insecure", False)),
                    traffic_timeout=float(traffic.get("timeout", 30)), server_node=data.get("server_node"),
                    client_node=data.get("client_node"), source=path)
    # Every {variable} must be known now, not half-way through a run.
    known = BUILTIN_VARS | set(spec.vars)
    for text in (spec.prepare, spec.url, spec.socks5, *(s and s.run for s in (spec.server, spec.client)),
                 *(s and s.setup for s in (spec.server, spec.client))):
        for m in VAR.finditer(text or ""):
            if m.group(1) not in known:
                line = _find_line(path, m.group(0))
                raise SourceError(path, line, f"unknown variable {m.group(0)} (known: {', '.join(sorted(known))})")
    return spec


def _find_line(path: str, needle: str) -> int | None:
    try:
        for i, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if needle in line:
                return i
    except OSError:
        pass
    return None
