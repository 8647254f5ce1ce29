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
    traffic: {url: "https://{web_ip}/bytes/{bytes}", insecure: true, socks5: "127.0.0.1:1080",
              http_url: "http://{web_ip}/bytes/{bytes}"}

``{name}`` (lowercase) is replaced by a variable: the built-ins below or the
tool's ``vars``; shell syntax such as ``${HOME}`` or ``$(cat key.pub)`` is
left to the shell. Commands run with ``sh -ec`` in the tool's work dir:
``prepare`` on the host (key generation), ``setup`` inside the node's
namespace after its ``run`` process started.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunnelwall.base import gotools, kernel, yamlsrc
from tunnelwall.base.errors import SourceError, TunnelwallError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "tools"
BUILTIN_VARS = {"server_ip", "client_ip", "web_ip", "server_host", "web_host", "family", "workdir", "bytes", "id", "server_node", "client_node",
                "python", "spec_dir", "tools_dir", "helper_ip", "helper_host", "helper_node"}
VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
TOOL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
# What a captured value may contain: it comes from a running program's output
# and is substituted into shell commands, so nothing a shell would interpret.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9+/=:.,_@%-]{1,4096}$")
SCHEMA = Path(__file__).resolve().parent / "tool.schema.json"
TOP_KEYS = {"name", "description", "requires", "vars", "prepare", "server", "client", "helper", "traffic",
            "server_node", "client_node", "helper_node", "extends", "captures"}
SIDE_KEYS = {"run", "env", "setup", "ready"}
READY_KEYS = {"tcp", "udp", "log", "command", "timeout"}
TRAFFIC_KEYS = {"url", "http_url", "socks5", "proxy_user", "insecure", "timeout", "requests"}
CAPTURE_KEYS = {"file", "log", "regex"}


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
    # A third party outside the censor, on its own node (helper_node, else
    # the web server's): Snowflake's volunteer proxy, which the client
    # reaches through the censor while the server (broker, bridge) is
    # elsewhere. Started once the server is ready, before the client.
    helper: Side | None = None
    # What goes through the tool: ``url`` by default, HTTPS to the outside
    # web server as a browser would send it (so a TLS tunnel carries TLS);
    # ``http_url``, where given, the same in plain HTTP (verify --inner http).
    url: str = ""
    http_url: str | None = None
    socks5: str | None = None
    proxy_user: str | None = None     # SOCKS5 user:password (pluggable transports pass their args there)
    captures: dict[str, dict] = field(default_factory=dict)   # name -> {file|log, regex}: read once both sides are up
    insecure: bool = False
    traffic_timeout: float = 30.0
    # Requests per check: requests-1 small ones (1 kB), then the measured fetch.
    # A proxy that opens one connection per request then shows the censor
    # several connections, as any page load does; a per-connection coin flip
    # (FET's 26%, its exemptions) does not decide a tool's result alone.
    requests: int = 1
    server_node: str | None = None
    client_node: str | None = None
    helper_node: str | None = None
    source: str = ""

    def unmet_requirements(self) -> list[str]:
        """Why this tool cannot run on this machine: kernel features it
        lacks, then programs that are not installed (empty: it can)."""
        reasons = kernel.missing(self.requires) + gotools.missing(self.requires)
        programs = [p for p in self.requires if not p.startswith(("kernel:", gotools.PREFIX)) and shutil.which(p) is None]
        if programs:
            reasons.append(f"not installed: {', '.join(programs)} (run scripts/setup.sh)")
        return reasons

    def path_prefix(self) -> list[str]:
        """Folders to put in front of PATH for this tool's commands: those of
        the Go programs it requires (``go:NAME``), built outside the repository."""
        return gotools.path_dirs(self.requires)

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
    path = yamlsrc.find(spec, builtin(), "tool", "; or a path to a tool .yaml")
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


def _extend(data, path: str):
    """``extends: BASE``: BASE's definition with this file's keys on top
    (``vars`` are merged key by key)."""
    base_name = data["extends"]
    base_path = Path(path).parent / base_name
    if not base_path.exists():
        base_path = builtin().get(str(base_name), base_path)
    if not Path(base_path).exists():
        raise SourceError(path, data.line_of("extends"), f"extends: no tool definition '{base_name}'")
    base = yamlsrc.load(base_path)
    if "extends" in base:
        raise SourceError(path, data.line_of("extends"), f"extends: '{base_name}' extends another tool; one level only")
    merged = yamlsrc.Mapping(base)
    merged.line, merged.key_lines = data.line, {**base.key_lines, **data.key_lines}
    for key, value in data.items():
        if key == "vars" and isinstance(base.get("vars"), dict) and isinstance(value, dict):
            both = yamlsrc.Mapping({**base["vars"], **value})
            both.line, both.key_lines = value.line, {**base["vars"].key_lines, **value.key_lines}
            merged["vars"] = both
        elif key != "extends":
            merged[key] = value
    return merged


def from_data(data, path: str) -> ToolSpec:
    yamlsrc.check_mapping(data, path, "a tool definition", TOP_KEYS)
    if "extends" in data:
        data = _extend(data, path)
    yamlsrc.check_mapping(data, path, "a tool definition", TOP_KEYS, required=("name", "traffic"))
    yamlsrc.validate(data, yamlsrc.load_schema(SCHEMA), path)
    requires = data.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SourceError(path, data.line_of("requires"), "requires: expected a list of program names")
    for req in requires:
        if req.startswith(gotools.PREFIX) and req[len(gotools.PREFIX):] not in gotools.pins():
            raise SourceError(path, data.line_of("requires"), f"requires: '{req}' is not pinned in "
                                                               f"{gotools.pins_path()} (pinned: {', '.join(sorted(gotools.pins()))})")
        if req.startswith("kernel:") and req[7:] not in kernel.FEATURES:
            raise SourceError(path, data.line_of("requires"), f"requires: unknown kernel feature '{req[7:]}' "
                                                               f"(known: {', '.join(sorted(kernel.FEATURES))})")
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
    requests = traffic.get("requests", 1)
    if not isinstance(requests, int) or isinstance(requests, bool) or not 1 <= requests <= 20:
        raise SourceError(path, traffic.line_of("requests"), f"traffic: requests must be a whole number 1..20, not '{requests}'")
    name = str(data["name"])
    if not TOOL_NAME.match(name):
        # The name becomes a directory under the run's log folder and part of
        # process names: no spaces, no slashes, no leading dot.
        raise SourceError(path, data.line_of("name"), f"name: '{name}' must be lowercase letters, digits, '.', '_' "
                                                      f"or '-', starting with a letter or digit (at most 40)")
    spec = ToolSpec(name=name, description=str(data.get("description", "")), requires=list(requires),
                    vars={str(k): str(v) for k, v in variables.items()}, prepare=_text(path, data, "prepare"),
                    server=_side(path, data, "server"), client=_side(path, data, "client"),
                    helper=_side(path, data, "helper"),
                    url=str(traffic["url"]), http_url=traffic.get("http_url"), socks5=traffic.get("socks5"),
                    proxy_user=traffic.get("proxy_user"),
                    insecure=bool(traffic.get("insecure", False)),
                    traffic_timeout=float(traffic.get("timeout", 30)), requests=requests, server_node=data.get("server_node"),
                    client_node=data.get("client_node"), helper_node=data.get("helper_node"), source=path)
    captures = data.get("captures", {})
    if not isinstance(captures, dict):
        raise SourceError(path, data.line_of("captures"), "captures: expected a mapping of name -> {file|log, regex}")
    for name, cap in captures.items():
        line = captures.line_of(name)
        if not isinstance(cap, dict) or "regex" not in cap or len({"file", "log"} & set(cap)) != 1 \
                or set(cap) - CAPTURE_KEYS:
            raise SourceError(path, line, f"captures.{name}: give 'regex' and one of 'file' or 'log' (server/client)")
        if "log" in cap and cap["log"] not in ("server", "client"):
            raise SourceError(path, line, f"captures.{name}: log is 'server' or 'client'")
        try:
            if re.compile(str(cap["regex"])).groups != 1:
                raise re.error("needs exactly one (group)")
        except re.error as err:
            raise SourceError(path, line, f"captures.{name}: bad regex: {err}") from None
        spec.captures[str(name)] = {k: str(v) for k, v in cap.items()}
    # Every {variable} must be known now, not half-way through a run.
    known = BUILTIN_VARS | set(spec.vars) | set(spec.captures)
    for text in (spec.prepare, spec.url, spec.http_url, spec.socks5, spec.proxy_user, *(s and s.run for s in (spec.server, spec.client, spec.helper)),
                 *(s and s.setup for s in (spec.server, spec.client, spec.helper))):
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
