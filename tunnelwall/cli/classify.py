"""``tunnelwall classify FILE.pcap --profile NAME``: the censor, offline.

For anyone's capture: ``--inside`` names which side is the censored
country's, ``--set`` changes a rule as ``verify --set`` does, each decided
flow names its deciding packet both by index in the flow and by frame
number in the file (as Wireshark counts), and warnings (a last record cut
short, direction rules that found no flow starting inside) go to stderr."""

from __future__ import annotations

import json
import sys

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.cli.main import _print_table, verb


def cmd_classify(args) -> int:
    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.offline import classify_pcap
    profile = profiles.apply_overrides(profiles.load(args.profile), args.set or [])
    if args.inside is not None:
        profile.inside = parse_inside(args.inside)
    if args.format == "json":
        # One line per flow as soon as the engine is done with it: memory
        # stays bounded by the flows alive at once, however long the capture.
        result = classify_pcap(args.pcap, profile, seed=args.seed,
                               on_flow=lambda report: print(json.dumps(report.as_dict())))
        print(json.dumps({"summary": result.summary(), "stats": result.stats,
                          "unparsed": [u.line() for u in result.unparsed], "warnings": result.warnings}))
        _say_unparsed(result)
        _warn(result.warnings)
        return 0
    result = classify_pcap(args.pcap, profile, seed=args.seed)
    rows = [r.as_dict() for r in result.flows]
    shown = rows if args.limit <= 0 else rows[:args.limit]
    table = [{"flow": f"{r['transport']} {r['client']}:{r['client_port']} > {r['server']}:{r['server_port']}",
              "protocol": r["protocol"] or "-", "rule": r["rule"] or "-",
              "action": r["action"] + ("" if r["decided"] else " (undecided)"),
              "pkt": r["packet_index"] or "-", "frame": r["frame"] or "-",
              "ms": r["ms"] if r["ms"] is not None else "-", "packets": r["packets"]} for r in shown]
    _print_table(table, ["flow", "protocol", "rule", "action", "pkt", "frame", "ms", "packets"])
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more flows (--limit 0 shows all)")
    print()
    _print_table(result.summary(), ["protocol", "rule", "action", "flows"])
    s = result.stats
    print(f"\n{s['packets']} packets, {s['flows']} flows, {s['blocked_packets']} packets after a blocking "
          f"verdict, profile {profile.name}", file=sys.stderr)
    _say_unparsed(result)
    _warn(result.warnings)
    return 0


def _say_unparsed(result) -> None:
    """One line per packet a classifier gave up on (work budget or a parse
    error): which flow and which packet, never a traceback."""
    for outcome in result.unparsed:
        print(outcome.line(), file=sys.stderr)
    more = result.stats.get("unparsed", 0) - len(result.unparsed)
    if more > 0:
        print(f"unparsed: {more} more packets (the last {len(result.unparsed)} shown)", file=sys.stderr)


def parse_inside(text: str) -> tuple:
    """``--inside 10.66.0.0/24,fd00::/8``: the capture's inside networks."""
    import ipaddress
    nets = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise TunnelwallError(f"--inside: '{item}' is not an IP network (e.g. 10.66.0.0/24 or fd00::/8)") from None
    if not nets:
        raise TunnelwallError("--inside: give at least one network, e.g. --inside 10.66.0.0/24")
    return tuple(nets)


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"tunnelwall: warning: {line}", file=sys.stderr)


@verb
def add_classify(sub) -> None:
    p = sub.add_parser("classify", help="classify the flows of a pcap file with a censor profile")
    p.add_argument("pcap", help="capture file (pcap or pcapng)")
    p.add_argument("--profile", default="gfw", help="profile name or YAML path (default: gfw)")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="table: flows and a summary; json: one line per flow, then the summary")
    p.add_argument("--seed", type=int, help="seed for probabilistic rules (default: the profile's)")
    p.add_argument("--limit", type=int, default=100, help="flows shown in the table (0: all)")
    p.add_argument("--inside", metavar="CIDR[,CIDR...]",
                   help="the capture's inside networks, replacing the profile's for this run (where direction "
                        "rules such as QUIC SNI blocking look for flows leaving the country)")
    p.add_argument("--set", action="append", metavar="RULE.FIELD=VALUE",
                   help="override a profile rule, e.g. --set tor.action=drop (repeatable)")
    p.set_defaults(func=cmd_classify)
