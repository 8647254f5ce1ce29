"""``tunnelwall profiles`` and ``tunnelwall profiles show NAME``: the censor
profiles, their period and sources, and their rules in words."""

from __future__ import annotations

import argparse
import json

from tunnelwall.cli.main import _print_table, sub_verbs, verb


def cmd_profiles(args) -> int:
    import datetime

    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.profiles import periods
    today = datetime.date.today()
    if args.action == "show":
        if not args.name:
            from tunnelwall.base.errors import TunnelwallError
            raise TunnelwallError("profiles show: give a profile name, e.g. tunnelwall profiles show gfw")
        p = profiles.load(args.name)
        if args.format == "json":
            print(json.dumps({"name": p.name, "period": p.period, "sources": p.sources, "description": p.description,
                              "rules": [{"name": r.name, "action": r.action, "words": profiles.describe_rule(r)}
                                        for r in p.rules]}, indent=1))
            return 0
        if args.name in profiles.ALIASES:
            print(f"({args.name} = {p.name})")
        print(f"{p.name}: {p.description}")
        print(f"period: {p.period or '-'} ({periods.status(p.period, today)} on {today.isoformat()})")
        for source in p.sources:
            print(f"source: {source}")
        t = p.tcp
        print(f"tcp: reassembly {'on' if t.reassemble else 'off'}, RST -> {t.rst}, FIN -> {t.fin}, "
              f"checksums {'checked' if t.check_checksum else 'not checked'}; fail {p.fail}")
        for rule in p.rules:
            print(f"  {rule.name}: {profiles.describe_rule(rule)}")
        return 0
    rows = []
    for name in profiles.available():
        p = profiles.load(name)
        rows.append({"profile": name, "period": p.period or "-", "status": periods.status(p.period, today),
                     "rules": len(p.rules), "alias_of": profiles.ALIASES.get(name, ""), "sources": len(p.sources)})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["profile", "period", "status", "rules", "sources", "alias_of"])
        print(f"\nstatus: whether the period includes today ({today.isoformat()}); "
              + "; ".join(f"{a} = {t}" for a, t in profiles.ALIASES.items()) + ", the newest profile of its censor")
    return 0


@verb
def add_profiles(sub) -> None:
    p = sub.add_parser("profiles", help="list censor profiles, or show one's rules in words")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_profiles, name=None)
    actions = sub_verbs(p, default="list")
    a = actions.add_parser("list", help="every profile with its period (the default)")
    a.add_argument("--format", choices=["table", "json"], default=argparse.SUPPRESS, help="output format")
    a = actions.add_parser("show", help="one profile: its sources, TCP model and rules in words")
    a.add_argument("name", help="profile name or YAML path, e.g. gfw")
    a.add_argument("--format", choices=["table", "json"], default=argparse.SUPPRESS, help="output format")
