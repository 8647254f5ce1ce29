"""Censor profiles: YAML data -> typed :class:`Profile`.

A profile is a list of rules (OpenGFW style: ``name``, ``match``, ``action``,
``log``) plus parameters for the classifiers and the censor's failure
behaviour. Built-in profiles live next to this file; ``load`` also takes a
path. Errors name file and line::

    middlebox/profiles/x.yaml:14: rules.0.action: 'block' must be one of: allow, log, ...

The schema (``schema.json``) is the only check of the structure: keys,
types, enums and ranges. This module checks only what a schema cannot say:
protocols the classifiers know, lists a rule refers to, addresses and port
ranges, classifier parameters and which fields go with which action.
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
ACTIONS = ("allow", "log", "drop", "reset", "throttle", "forge-dns", "probe", "freeze")
# Names that stand for another profile: "gfw" is the GFW as it is now.
ALIASES = {"gfw": "gfw-2025"}
BLOCKING = ("drop", "reset")
SCHEMA = PROFILE_DIR / "schema.json"


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
    sport_gt_dport: bool | None = None     # QUIC SNI blocking: only when source port > destination port
    direction: str | None = None           # outbound: client inside, server outside (profile's `inside`)
    ip_version: int | None = None
    ja3: tuple[str, ...] | None = None     # ClientHello fingerprints (TLS, QUIC, DTLS)
    ja4: tuple[str, ...] | None = None

    @property
    def needs_detection(self) -> bool:
        return any(x is not None for x in (self.protocols, self.signals, self.sni, self.qname, self.host,
                                          self.ja3, self.ja4))


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
    after_bytes: int | None = None      # freeze: server->client bytes let through before the silent drop
    resets: dict | None = None          # reset: {count: N, windows: [LOW, HIGH]} of the injected RST+ACKs
    unless: Match | None = None         # the rule does not apply where this matches (allowlists)
    log: bool = True
    description: str = ""
    source: str = ""
    confidence: str = ""                # measured | reported by users | assumed (and why)
    line: int = 0

    @property
    def blocks(self) -> bool:
        return self.action in BLOCKING

    @property
    def needs_detection(self) -> bool:
        return self.match.needs_detection or (self.unless is not None and self.unless.needs_detection)


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
    udp_idle_timeout: float = 0.0  # UDP flows, if a censor keeps them shorter than idle_timeout (0: the same)
    rule_idle_timeout: int = 60  # seconds an allow rule stays on the switch without packets; a
                                 # flow that comes back is re-announced (blocking rules never idle out)
    max_lag_ms: int = 250        # overload: a frame that waited longer than this in the middlebox's
                                 # receive queue is past its capacity and is handled by the profile's
                                 # `fail` policy (open: forwarded unexamined; closed: dropped).
                                 # 0 sheds every frame (to test the policy)
    offload_after: int = 32      # an allowed flow's rule goes on the switch once the flow has sent this
                                 # many packets after its verdict; until then the middlebox passes it on
                                 # (a short connection never costs a rule). 0: at the verdict
    offload: str = "conntrack"   # how an allowed flow leaves the middlebox: "conntrack" (the switch's
                                 # connection tracker marks the flow at its verdict: no rule, no
                                 # controller) or "rules" (a 5-tuple rule per direction from the
                                 # controller, after offload_after packets); docs/censor-model.md.
                                 # Fixed for a run


@dataclass
class Profile:
    name: str
    rules: list[Rule]
    description: str = ""
    period: str = ""
    sources: list[str] = field(default_factory=list)
    fail: str = "closed"            # while the censor is down: closed (OVS secure) / open (standalone)
    overload: str = "closed"        # past the middlebox's capacity (flows.max_lag_ms): open forwards
                                    # frames unexamined, closed drops them; defaults to `fail`
    placement: str | None = None    # tap / inline; None: the topology decides
    inspect_packets: int = 100
    seed: int = 0
    lists: dict[str, list[str]] = field(default_factory=dict)
    params: dict[str, dict] = field(default_factory=dict)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    inside: tuple = ()              # the censored country's networks (for direction: outbound)
    confidence: str = ""            # how well the model is established (e.g. "user reports")
    tcp: TcpModel = field(default_factory=TcpModel)
    flows: FlowSettings = field(default_factory=FlowSettings)
    source: str = ""


def available() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(PROFILE_DIR.glob("*.yaml"))}
    return {**found, **{alias: found[target] for alias, target in ALIASES.items() if target in found}}


def load(spec: str) -> Profile:
    path = yamlsrc.find(spec, available(), "censor profile", "; or a path to a profile .yaml")
    return from_data(yamlsrc.load(path), str(path))


def loads(text: str, path: str = "<string>") -> Profile:
    return from_data(yamlsrc.load(path, text), path)


def _fail(path, line, msg):
    return SourceError(path, line, msg)


def _str_list(value: Any) -> list[str]:
    """A name or a list of names (the schema allows both; list entries may be numbers) as strings."""
    return [value] if isinstance(value, str) else [str(v) for v in value]


def from_data(data: Any, path: str) -> Profile:
    from tunnelwall.middlebox.classifiers import CLASSIFIERS
    from tunnelwall.middlebox.classifiers.base import ParamError

    yamlsrc.validate(data, yamlsrc.load_schema(SCHEMA), path)
    prof = Profile(name=str(data["name"]), rules=[], description=str(data.get("description", "")),
                   period=str(data.get("period", "")), source=path)
    if "sources" in data:
        prof.sources = _str_list(data["sources"])
    prof.fail = data.get("fail", "closed")
    prof.overload = data.get("overload", prof.fail)
    prof.placement = data.get("placement")
    if "inside" in data:
        nets = []
        for entry in _str_list(data["inside"]):
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise _fail(path, data.line_of("inside"), f"inside: '{entry}' is not an IP network") from None
        prof.inside = tuple(nets)
    if "confidence" in data:
        prof.confidence = str(data["confidence"])
    for key in ("inspect_packets", "seed"):
        if key in data:
            setattr(prof, key, data[key])
    lists = data.get("lists", {})
    for name, entries in lists.items():
        prof.lists[name] = [e.lower().rstrip(".") for e in _str_list(entries)]
    params = data.get("params", {})
    for cname, cparams in params.items():
        line = params.line_of(cname)
        if cname not in CLASSIFIERS:
            raise _fail(path, line, f"params: unknown classifier '{cname}' (known: {', '.join(sorted(CLASSIFIERS))})")
        try:
            CLASSIFIERS[cname](cparams)
        except ParamError as err:
            raise _fail(path, line, f"params.{cname}: {err}") from None
        prof.params[cname] = dict(cparams)
    if "probe" in data:
        prof.probe = ProbeSettings(**{k: int(v) if k == "count" else float(v) for k, v in data["probe"].items()})
    if "tcp" in data:
        prof.tcp = TcpModel(**data["tcp"])
    if "flows" in data:
        prof.flows = FlowSettings(**data["flows"])
    rules = data["rules"]
    names = set()
    for i, spec in enumerate(rules):
        rule = _rule(path, rules.line_of(i), spec, prof)
        if rule.name in names:
            raise _fail(path, rule.line, f"rule '{rule.name}': duplicate rule name")
        names.add(rule.name)
        prof.rules.append(rule)
    return prof


def _rule(path: str, line: int, spec: Any, prof: Profile) -> Rule:
    name, action = spec["name"], spec["action"]
    if not name:
        raise _fail(path, line, "rule: missing 'name'")
    rule = Rule(name=name, match=_match(path, spec, name, prof), action=action, line=line,
                log=bool(spec.get("log", True)), description=str(spec.get("description", "")),
                source=str(spec.get("source", "")), confidence=str(spec.get("confidence", "")))
    if "unless" in spec:
        rule.unless = _match(path, spec, name, prof, section="unless")
    # Which fields go with which action: the schema checks each field, this their combination.
    if action == "freeze":
        if "after_bytes" not in spec:
            raise _fail(path, line, f"rule '{name}': freeze needs 'after_bytes', a positive whole number (e.g. 16384)")
        rule.after_bytes = spec["after_bytes"]
    elif "after_bytes" in spec:
        raise _fail(path, spec.line_of("after_bytes"), f"rule '{name}': 'after_bytes' only applies to action freeze")
    if "resets" in spec:
        r = spec["resets"]
        if action != "reset":
            raise _fail(path, spec.line_of("resets"), f"rule '{name}': resets only applies to action reset")
        rule.resets = {"count": r.get("count", 1), "windows": list(r["windows"]) if r.get("windows") else None}
    if "probability" in spec:
        rule.probability = float(spec["probability"])
    if "residual" in spec:
        rule.residual = float(spec["residual"])
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
        rule.then = spec.get("then", "drop")
    elif "then" in spec:
        raise _fail(path, spec.line_of("then"), f"rule '{name}': 'then' only applies to action probe")
    return rule


def _match(path: str, spec, rule: str, prof: Profile, section: str = "match") -> Match:
    from tunnelwall.middlebox.classifiers import PROTOCOLS

    m = spec[section]
    out = Match()
    for key, value in m.items():
        line = m.line_of(key)
        if key == "protocol":
            protos = _str_list(value)
            for p in protos:
                if p not in PROTOCOLS:
                    raise _fail(path, line, f"rule '{rule}': unknown protocol '{p}' (known: {', '.join(sorted(PROTOCOLS))})")
            out.protocols = frozenset(protos)
        elif key == "signal":
            out.signals = frozenset(_str_list(value))
        elif key in ("sni", "qname", "host"):
            names = []
            for entry in _str_list(value):
                if entry.startswith("@"):
                    if entry[1:] not in prof.lists:
                        raise _fail(path, line, f"rule '{rule}': unknown list '{entry}' (define it under 'lists')")
                    names += prof.lists[entry[1:]]
                else:
                    names.append(entry.lower().rstrip("."))
            setattr(out, key, tuple(names))
        elif key in ("server_ip", "server_net", "client_ip"):
            nets = []
            for entry in _expand(path, line, rule, prof, _str_list(value)):
                try:
                    nets.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise _fail(path, line, f"rule '{rule}': '{entry}' is not an IP address or CIDR") from None
            setattr(out, "client_ips" if key == "client_ip" else "server_ips", tuple(nets))
        elif key == "sport_gt_dport":
            out.sport_gt_dport = value
        elif key == "direction":
            if not prof.inside:
                raise _fail(path, line, f"rule '{rule}': direction needs the profile's 'inside' networks")
            out.direction = value
        elif key == "ip_version":
            out.ip_version = value
        elif key in ("ja3", "ja4"):
            setattr(out, key, tuple(v.lower() for v in _expand(path, line, rule, prof, _str_list(value))))
        elif key == "server_port":
            out.server_ports = frozenset(_ports(path, line, rule, value))
        elif key == "transport":
            out.transport = value
        elif key == "min_confidence":
            out.min_confidence = float(value)
    return out


def _expand(path: str, line: int, rule: str, prof: Profile, entries: list[str]) -> list[str]:
    """Entries with "@list" references replaced by the list's entries."""
    out = []
    for entry in entries:
        if entry.startswith("@"):
            if entry[1:] not in prof.lists:
                raise _fail(path, line, f"rule '{rule}': unknown list '{entry}' (define it under 'lists')")
            out += prof.lists[entry[1:]]
        else:
            out.append(entry)
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
    (e.g. ``flows.rule_idle_timeout=2`` so a test need not idle for a minute);
    ``profile.overload=open|closed`` its overload policy."""
    by_name = {r.name: r for r in profile.rules}
    for item in overrides:
        left, sep, value = item.partition("=")
        rule_name, dot, field_name = left.rpartition(".")
        if not sep or not dot:
            raise TunnelwallError(f"override '{item}': write RULE.FIELD=VALUE, e.g. fet.probability=1")
        if rule_name in ("tcp", "flows") and rule_name not in by_name:
            _override_setting(profile, item, rule_name, field_name, value)
            continue
        if rule_name == "profile" and rule_name not in by_name:
            if field_name != "overload" or value not in ("open", "closed"):
                raise TunnelwallError(f"override '{item}': the profile-wide setting is profile.overload=open|closed")
            profile.overload = value
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
    """``tcp.FIELD=VALUE`` / ``flows.FIELD=VALUE``, checked like the YAML is: by the schema's section."""
    text = f"{section}:\n  {field_name}: {value}\n"
    try:
        parsed = yamlsrc.load("<override>", text)
        section_schema = yamlsrc.load_schema(SCHEMA)["properties"][section]
        yamlsrc.validate(parsed, {"type": "object", "properties": {section: section_schema}}, "<override>")
        parsed_value = parsed[section][field_name]
        if section == "tcp":
            profile.tcp = dataclasses.replace(profile.tcp, **{field_name: parsed_value})
        else:
            setattr(profile.flows, field_name, parsed_value)
    except TunnelwallError as err:
        raise TunnelwallError(f"override '{item}': {str(err).split(': ', 1)[-1]}") from None


def describe_match(m: Match) -> str:
    """A rule's match in words, e.g. "tls sni twitter.com (and 6 more) outbound"."""
    what = []
    if m.protocols:
        what.append("/".join(sorted(m.protocols)))
    if m.signals:
        what.append("signal " + "/".join(sorted(m.signals)))
    for key in ("sni", "host", "qname", "ja3", "ja4"):
        names = getattr(m, key)
        if names:
            what.append(f"{key} {names[0]}" + (f" (and {len(names) - 1} more)" if len(names) > 1 else ""))
    if m.ip_version:
        what.append(f"IPv{m.ip_version}")
    if m.transport:
        what.append(f"over {m.transport}")
    if m.server_ports is not None:
        ports = sorted(m.server_ports)
        if len(ports) == 1:
            what.append(f"server port {ports[0]}")
        elif ports[-1] - ports[0] + 1 == len(ports):
            what.append(f"server ports {ports[0]}-{ports[-1]}")
        else:
            what.append(f"server ports {', '.join(map(str, ports[:5]))}" + (" ..." if len(ports) > 5 else ""))
    if m.server_ips:
        what.append("servers in " + ", ".join(map(str, m.server_ips[:3])) + (" ..." if len(m.server_ips) > 3 else ""))
    if m.client_ips:
        what.append("clients in " + ", ".join(map(str, m.client_ips[:3])))
    if m.sport_gt_dport:
        what.append("source port > destination port")
    if m.direction:
        what.append(f"{m.direction} (crossing the border)")
    return " ".join(what) or "any flow"


ACTION_WORDS = {"allow": "allow", "log": "log only", "drop": "drop silently", "reset": "RST both ends",
                "throttle": "throttle to {rate_kbit} kbit/s", "forge-dns": "forge a DNS answer ({answer})",
                "probe": "actively probe the server, then {then} it if confirmed",
                "freeze": "let {after_bytes} bytes from the server through, then drop silently"}


def describe_rule(rule: Rule) -> str:
    """One rule in words, e.g. "tls sni twitter.com (and 6 more) -> RST both
    ends (3-tuple blocked 90 s)"."""
    text = describe_match(rule.match)
    if rule.unless is not None:
        text += f", unless {describe_match(rule.unless)}"
    action = ACTION_WORDS[rule.action].format(rate_kbit=rule.rate_kbit, answer=rule.answer, then=rule.then,
                                              after_bytes=rule.after_bytes)
    extra = []
    if rule.probability < 1:
        extra.append(f"with probability {rule.probability:g}")
    if rule.residual:
        extra.append(f"3-tuple blocked {rule.residual:g} s")
    if rule.resets:
        extra.append(f"{rule.resets['count']} RST+ACK" + (f", windows {rule.resets['windows'][0]}-{rule.resets['windows'][1]}"
                                                          if rule.resets.get("windows") else ""))
    text = f"{text} -> {action}" + (f" ({', '.join(extra)})" if extra else "")
    return text + (f"  [{rule.source}]" if rule.source else "")
