"""Censor profiles: YAML data -> typed :class:`Profile`.

A profile is a list of rules (OpenGFW style: ``name``, ``match``, ``action``,
``log``) plus parameters for the classifiers and the censor's failure
behaviour. Built-in profiles live next to this file; ``load`` also takes a
path. Errors name file and line::

    middlebox/profiles/x.yaml:14: rule 'fet': unknown action 'block' (...)
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import SourceError, TunnelwallError

from ..stream import TcpModel

PROFILE_DIR = Path(__file__).resolve().parent
ACTIONS = ("allow", "log", "drop", "reset", "throttle", "forge-dns", "probe")
BLOCKING = ("drop", "reset")
TOP_KEYS = {"name", "description", "period", "sources", "fail", "placement", "inspect_packets", "seed",
            "lists", "params", "rules", "probe", "tcp", "flows"}
RULE_KEYS = {"name", "match", "action", "probability", "residual", "rate", "answer", "log", "description",
             "source", "then"}
MATCH_KEYS = {"protocol", "signal", "sni", "qname", "host", "server_ip", "server_port", "transport",
              "min_confidence", "client_ip"}


@dataclass
class Match:
    protocols: frozenset[str] | None = None
    signals: frozenset[str] | None = None
    sni: tuple[str, ...] | None = None          # domain suffixes
    qname: tuple[str, ...] | None = None
    host: tuple[str, ...] | None = None
    server_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    client_ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    server_ports: frozenset[int] | None = None
    transport: str | None = None
    min_confidence: float = 0.0

    @property
    def needs_detection(self) -> bool:
        return any(x is not None for x in (self.protocols, self.signals, self.sni, self.qname, self.host))


@dataclass
class Rule:
    name: str
    match: Match
    action: str
    probability: float = 1.0
    residual: float | None = None       # seconds of residual blocking of the server 3-tuple
    rate_kbit: int | None = None        # throttle
    answer: str | None = None           # forge-dns: the forged A record
    then: str | None = None             # probe: action once probing confirms (drop/reset)
    log: bool = True
    description: str = ""
    source: str = ""
    line: int = 0

    @property
    def blocks(self) -> bool:
        return self.action in BLOCKING


@dataclass
class ProbeSettings:
    """Active probing (the GFW's follow-up to a passive suspicion)."""
    delay: float = 0.5          # seconds from suspicion to the first probe
    count: int = 8              # probes per suspected server
    timeout: float = 3.0        # seconds to wait for a reaction to each probe


@dataclass
class FlowSettings:
    """The censor's flow table and how long its verdicts hold on the switch."""
    max: int = 65536            # flows tracked at once; the least recently active are evicted beyond it
    idle_timeout: float = 300.0  # seconds without packets before a flow is forgotten
    rule_idle_timeout: int = 60  # seconds an allow rule stays on the switch without packets; a
                                 # flow that comes back is re-announced (blocking rules never idle out)


@dataclass
class Profile:
    name: str
    rules: list[Rule]
    description: str = ""
    period: str = ""
    sources: list[str] = field(default_factory=list)
    fail: str = "closed"            # while the censor is down: closed (OVS secure) / open (standalone)
    placement: str | None = None    # tap / inline; None: the topology decides
    inspect_packets: int = 100
    seed: int = 0
    lists: dict[str, list[str]] = field(default_factory=dict)
    params: dict[str, dict] = field(default_factory=dict)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    tcp: TcpModel = field(default_factory=TcpModel)
    flows: FlowSettings = field(default_factory=FlowSettings)
    source: str = ""


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.yaml"))}


def load(spec: str) -> Profile:
    path = yamlsrc.find(spec, available(), "censor profile", "; or a path to a profile .yaml")
    return from_data(yamlsrc.load(path), str(path))


def loads(text: str, path: str = "<string>") -> Profile:
    return from_data(yamlsrc.load(path, text), path)


def _fail(path, line, msg):
    return SourceError(path, line, msg)


def _str_list(path: str, value: Any, line: int, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _fail(path, line, f"{what}: expected a list of strings")
    return [str(v) for v in value]


def from_data(data: Any, path: str) -> Profile:
    from tunnelwall.middlebox.classifiers import CLASSIFIERS
    from tunnelwall.middlebox.classifiers.base import ParamError

    yamlsrc.check_mapping(data, path, "a profile", TOP_KEYS, required=("name", "rules"))
    prof = Profile(name=str(data["name"]), rules=[], description=str(data.get("description", "")),
                   period=str(data.get("period", "")), source=path)
    if "sources" in data:
        prof.sources = _str_list(path, data["sources"], data.line_of("sources"), "sources")
    fail = data.get("fail", "closed")
    if fail not in ("open", "closed"):
        raise _fail(path, data.line_of("fail"), f"fail: '{fail}' must be 'open' or 'closed'")
    prof.fail = fail
    placement = data.get("placement")
    if placement is not None and placement not in ("tap", "inline"):
        raise _fail(path, data.line_of("placement"), f"placement: '{placement}' must be 'tap' or 'inline'")
    prof.placement = placement
    for key in ("inspect_packets", "seed"):
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < (1 if key == "inspect_packets" else 0):
                raise _fail(path, data.line_of(key), f"{key}: expected a {'positive' if key == 'inspect_packets' else 'non-negative'} whole number")
            setattr(prof, key, data[key])
    lists = data.get("lists", {})
    if not isinstance(lists, yamlsrc.Mapping) and lists != {}:
        raise _fail(path, data.line_of("lists"), "lists: expected a mapping of list name -> entries")
    for name, entries in lists.items():
        prof.lists[name] = [e.lower().rstrip(".") for e in _str_list(path, entries, lists.line_of(name), f"lists.{name}")]
    params = data.get("params", {})
    if not isinstance(params, yamlsrc.Mapping) and params != {}:
        raise _fail(path, data.line_of("params"), "params: expected a mapping of classifier -> parameters")
    for cname, cparams in params.items():
        line = params.line_of(cname)
        if cname not in CLASSIFIERS:
            raise _fail(path, line, f"params: unknown classifier '{cname}' (known: {', '.join(sorted(CLASSIFIERS))})")
        if not isinstance(cparams, dict):
            raise _fail(path, line, f"params.{cname}: expected a mapping")
        try:
            CLASSIFIERS[cname](cparams)
        except ParamError as err:
            raise _fail(path, line, f"params.{cname}: {err}") from None
        prof.params[cname] = dict(cparams)
    if "probe" in data:
        prof.probe = _probe(path, data)
    if "tcp" in data:
        prof.tcp = _tcp(path, data)
    if "flows" in data:
        prof.flows = _flows(path, data)
    rules = data["rules"]
    if not isinstance(rules, yamlsrc.Sequence):
        raise _fail(path, data.line_of("rules"), "rules: expected a list")
    names = set()
    for i, spec in enumerate(rules):
        rule = _rule(path, rules.line_of(i), spec, prof)
        if rule.name in names:
            raise _fail(path, rule.line, f"rule '{rule.name}': duplicate rule name")
        names.add(rule.name)
        prof.rules.append(rule)
    return prof


def _probe(path: str, data) -> ProbeSettings:
    spec = data["probe"]
    if not isinstance(spec, yamlsrc.Mapping):
        raise _fail(path, data.line_of("probe"), "probe: expected a mapping (delay, count, timeout)")
    out = ProbeSettings()
    for key, value in spec.items():
        if key not in ("delay", "count", "timeout"):
            raise _fail(path, spec.line_of(key), f"probe: unknown field '{key}' (delay, count, timeout)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _fail(path, spec.line_of(key), f"probe.{key}: expected a non-negative number")
        setattr(out, key, int(value) if key == "count" else float(value))
    return out


def _tcp(path: str, data) -> TcpModel:
    """The censor's TCP model (see :mod:`middlebox.stream` for each field's meaning and source)."""
    spec = data["tcp"]
    fields = {f: v for f, v in TcpModel().__dict__.items()}
    if not isinstance(spec, yamlsrc.Mapping):
        raise _fail(path, data.line_of("tcp"), f"tcp: expected a mapping ({', '.join(fields)})")
    out = {}
    for key, value in spec.items():
        line = spec.line_of(key)
        if key not in fields:
            raise _fail(path, line, f"tcp: unknown field '{key}' (one of: {', '.join(fields)})")
        default = fields[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise _fail(path, line, f"tcp.{key}: expected true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(path, line, f"tcp.{key}: expected a positive whole number")
        elif value not in TcpModel.CHOICES[key]:
            raise _fail(path, line, f"tcp.{key}: '{value}' must be one of {', '.join(TcpModel.CHOICES[key])}")
        out[key] = value
    return TcpModel(**out)


def _flows(path: str, data) -> FlowSettings:
    spec = data["flows"]
    out = FlowSettings()
    if not isinstance(spec, yamlsrc.Mapping):
        raise _fail(path, data.line_of("flows"), "flows: expected a mapping (max, idle_timeout, rule_idle_timeout)")
    for key, value in spec.items():
        line = spec.line_of(key)
        if key not in out.__dict__:
            raise _fail(path, line, f"flows: unknown field '{key}' (max, idle_timeout, rule_idle_timeout)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
                or (key != "idle_timeout" and not isinstance(value, int)):
            raise _fail(path, line, f"flows.{key}: expected a positive {'number' if key == 'idle_timeout' else 'whole number'}")
        setattr(out, key, value)
    return out


def _rule(path: str, line: int, spec: Any, prof: Profile) -> Rule:
    if not isinstance(spec, yamlsrc.Mapping):
        raise _fail(path, line, "each rule must be a mapping with name, match and action")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(path, line, "rule: missing 'name'")
    for key in spec:
        if key not in RULE_KEYS:
            raise _fail(path, spec.line_of(key), f"rule '{name}': unknown field '{key}' (expected one of: {', '.join(sorted(RULE_KEYS))})")
    action = spec.get("action")
    if action not in ACTIONS:
        raise _fail(path, spec.line_of("action") if "action" in spec else line,
                    f"rule '{name}': unknown action '{action}' (one of: {', '.join(ACTIONS)})")
    rule = Rule(name=name, match=_match(path, spec, name, prof), action=action, line=line,
                log=bool(spec.get("log", True)), description=str(spec.get("description", "")),
                source=str(spec.get("source", "")))
    if "probability" in spec:
        p = spec["probability"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise _fail(path, spec.line_of("probability"), f"rule '{name}': probability must be between 0 and 1")
        rule.probability = float(p)
    if "residual" in spec:
        r = spec["residual"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or r <= 0:
            raise _fail(path, spec.line_of("residual"), f"rule '{name}': residual must be a positive number of seconds")
        rule.residual = float(r)
    if action == "throttle":
        if "rate" not in spec:
            raise _fail(path, line, f"rule '{name}': throttle needs 'rate' (e.g. 256kbit)")
        from tunnelwall.base.units import parse_bandwidth
        try:
            rule.rate_kbit = max(1, int(parse_bandwidth(spec["rate"]) * 1000))
        except ValueError:
            raise _fail(path, spec.line_of("rate"), f"rule '{name}': rate '{spec['rate']}' is not a rate like 256kbit") from None
    if action == "forge-dns":
        try:
            rule.answer = str(ipaddress.IPv4Address(str(spec.get("answer", ""))))
        except ValueError:
            raise _fail(path, spec.line_of("answer") if "answer" in spec else line,
                        f"rule '{name}': forge-dns needs 'answer', an IPv4 address") from None
    if action == "probe":
        then = spec.get("then", "drop")
        if then not in BLOCKING:
            raise _fail(path, spec.line_of("then"), f"rule '{name}': then must be one of {', '.join(BLOCKING)}")
        rule.then = then
    elif "then" in spec:
        raise _fail(path, spec.line_of("then"), f"rule '{name}': 'then' only applies to action probe")
    return rule


def _match(path: str, spec, rule: str, prof: Profile) -> Match:
    from tunnelwall.middlebox.classifiers import PROTOCOLS

    m = spec.get("match")
    if not isinstance(m, yamlsrc.Mapping) or not m:
        raise _fail(path, spec.line_of("match") if "match" in spec else spec.line,
                    f"rule '{rule}': 'match' must be a non-empty mapping (e.g. {{protocol: openvpn}})")
    out = Match()
    for key, value in m.items():
        line = m.line_of(key)
        if key not in MATCH_KEYS:
            raise _fail(path, line, f"rule '{rule}': unknown match field '{key}' (expected one of: {', '.join(sorted(MATCH_KEYS))})")
        if key == "protocol":
            protos = _str_list(path, value, line, f"rule '{rule}': match.protocol")
            for p in protos:
                if p not in PROTOCOLS:
                    raise _fail(path, line, f"rule '{rule}': unknown protocol '{p}' (known: {', '.join(sorted(PROTOCOLS))})")
            out.protocols = frozenset(protos)
        elif key == "signal":
            out.signals = frozenset(_str_list(path, value, line, f"rule '{rule}': match.signal"))
        elif key in ("sni", "qname", "host"):
            names = []
            for entry in _str_list(path, value, line, f"rule '{rule}': match.{key}"):
                if entry.startswith("@"):
                    if entry[1:] not in prof.lists:
                        raise _fail(path, line, f"rule '{rule}': unknown list '{entry}' (define it under 'lists')")
                    names += prof.lists[entry[1:]]
                else:
                    names.append(entry.lower().rstrip("."))
            setattr(out, key, tuple(names))
        elif key in ("server_ip", "client_ip"):
            nets = []
            for entry in _str_list(path, value, line, f"rule '{rule}': match.{key}"):
                try:
                    nets.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise _fail(path, line, f"rule '{rule}': '{entry}' is not an IP address or CIDR") from None
            setattr(out, "server_ips" if key == "server_ip" else "client_ips", tuple(nets))
        elif key == "server_port":
            out.server_ports = frozenset(_ports(path, line, rule, value))
        elif key == "transport":
            if value not in ("tcp", "udp"):
                raise _fail(path, line, f"rule '{rule}': transport must be tcp or udp")
            out.transport = value
        elif key == "min_confidence":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise _fail(path, line, f"rule '{rule}': min_confidence must be between 0 and 1")
            out.min_confidence = float(value)
    return out


def _ports(path: str, line: int, rule: str, value: Any) -> set[int]:
    items = value if isinstance(value, list) else [value]
    ports: set[int] = set()
    for item in items:
        text = str(item)
        try:
            if "-" in text:
                lo, hi = (int(x) for x in text.split("-", 1))
            else:
                lo = hi = int(text)
            if not 0 <= lo <= hi <= 65535:
                raise ValueError
        except ValueError:
            raise _fail(path, line, f"rule '{rule}': '{text}' is not a port or port range (e.g. 443, 8000-8100)") from None
        ports.update(range(lo, hi + 1))
    return ports


OVERRIDABLE = {"probability": float, "residual": float, "action": str, "log": bool}


def apply_overrides(profile: Profile, overrides: list[str]) -> Profile:
    """Apply ``RULE.FIELD=VALUE`` overrides (e.g. ``fet.probability=1``) in place.

    For tests and exercises that need a deterministic censor: the published
    FET block rate is 26.3%, a regression test wants 100%. ``tcp.FIELD=VALUE``
    and ``flows.FIELD=VALUE`` set the censor's TCP model and flow settings
    (e.g. ``flows.rule_idle_timeout=2`` so a test need not idle for a minute)."""
    by_name = {r.name: r for r in profile.rules}
    for item in overrides:
        left, sep, value = item.partition("=")
        rule_name, dot, field_name = left.rpartition(".")
        if not sep or not dot:
            raise TunnelwallError(f"override '{item}': write RULE.FIELD=VALUE, e.g. fet.probability=1")
        if rule_name in ("tcp", "flows") and rule_name not in by_name:
            _override_setting(profile, item, rule_name, field_name, value)
            continue
        if rule_name not in by_name:
            raise TunnelwallError(f"override '{item}': profile '{profile.name}' has no rule '{rule_name}' "
                                  f"(rules: {', '.join(by_name)})")
        if field_name not in OVERRIDABLE:
            raise TunnelwallError(f"override '{item}': field '{field_name}' cannot be overridden "
                                  f"(one of: {', '.join(OVERRIDABLE)})")
        rule = by_name[rule_name]
        try:
            if field_name == "probability":
                parsed = float(value)
                if not 0 <= parsed <= 1:
                    raise ValueError
            elif field_name == "residual":
                parsed = float(value)
                if parsed < 0:
                    raise ValueError
                parsed = parsed or None
            elif field_name == "action":
                if value not in ACTIONS or value in ("throttle", "forge-dns", "probe"):
                    raise ValueError
                parsed = value
            else:
                if value.lower() not in ("true", "false"):
                    raise ValueError
                parsed = value.lower() == "true"
        except ValueError:
            raise TunnelwallError(f"override '{item}': bad value for {field_name}") from None
        setattr(rule, field_name, parsed)
    return profile


def _override_setting(profile: Profile, item: str, section: str, field_name: str, value: str) -> None:
    """``tcp.FIELD=VALUE`` / ``flows.FIELD=VALUE``, checked like the YAML is."""
    text = f"{section}:\n  {field_name}: {value}\n"
    try:
        parsed = yamlsrc.load("<override>", text)
        if section == "tcp":
            profile.tcp = dataclasses.replace(profile.tcp, **{field_name: getattr(_tcp("<override>", parsed), field_name)})
        else:
            setattr(profile.flows, field_name, getattr(_flows("<override>", parsed), field_name))
    except TunnelwallError as err:
        raise TunnelwallError(f"override '{item}': {str(err).split(': ', 1)[-1]}") from None


def describe_rule(rule: Rule) -> str:
    """One rule in words, e.g. "a TLS ClientHello naming twitter.com (and 6
    more) -> RST both ends; 3-tuple blocked 90 s"."""
    m = rule.match
    what = []
    if m.protocols:
        what.append("/".join(sorted(m.protocols)))
    if m.signals:
        what.append("signal " + "/".join(sorted(m.signals)))
    for key in ("sni", "host", "qname"):
        names = getattr(m, key)
        if names:
            what.append(f"{key} {names[0]}" + (f" (and {len(names) - 1} more)" if len(names) > 1 else ""))
    if m.transport:
        what.append(f"over {m.transport}")
    if m.server_ports is not None:
        ports = sorted(m.server_ports)
        what.append(f"server port {ports[0]}" if len(ports) == 1 else f"server ports {ports[0]}-{ports[-1]}"
                    if ports[-1] - ports[0] + 1 == len(ports) else f"server ports {', '.join(map(str, ports[:5]))}")
    if m.server_ips:
        what.append("servers in " + ", ".join(map(str, m.server_ips[:3])) + (" ..." if len(m.server_ips) > 3 else ""))
    if m.client_ips:
        what.append("clients in " + ", ".join(map(str, m.client_ips[:3])))
    action = {"allow": "allow", "log": "log only", "drop": "drop silently", "reset": "RST both ends",
              "throttle": f"throttle to {rule.rate_kbit} kbit/s", "forge-dns": f"forge a DNS answer ({rule.answer})",
              "probe": f"actively probe the server, then {rule.then} it if confirmed"}[rule.action]
    extra = []
    if rule.probability < 1:
        extra.append(f"with probability {rule.probability:g}")
    if rule.residual:
        extra.append(f"3-tuple blocked {rule.residual:g} s")
    text = f"{' '.join(what) or 'any flow'} -> {action}" + (f" ({', '.join(extra)})" if extra else "")
    return text + (f"  [{rule.source}]" if rule.source else "")
