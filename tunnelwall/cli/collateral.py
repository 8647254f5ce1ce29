"""``tunnelwall collateral --profile P``: what the censor costs ordinary users."""

from __future__ import annotations

import json
import sys

from tunnelwall.cli.main import _print_table, verb


def cmd_collateral(args) -> int:
    from tunnelwall.base.errors import TunnelwallError
    from tunnelwall.harness import collateral
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else collateral.CLASSES
    unknown = [c for c in classes if c not in collateral.CLASSES]
    if unknown or not classes:
        raise TunnelwallError(f"collateral: unknown class(es) {', '.join(unknown) or '(none given)'} "
                              f"(known: {', '.join(collateral.CLASSES)})")
    if args.from_run:
        # A running (or finished) run's background traffic, summed up.
        from pathlib import Path
        from tunnelwall.base.runstate import active_run
        log_dir = Path(args.from_run) if Path(args.from_run).is_dir() else Path(active_run(args.from_run).log_dir)
        attempts = collateral.from_traffic_logs(log_dir)
        if not attempts:
            raise TunnelwallError(f"collateral: no background traffic logged in {log_dir} (traffic: on client nodes)")
        profile = "(from the run)"
    else:
        from tunnelwall.runtime.network import UpOptions, down, up
        state = up(UpOptions(topology=args.topology, profile=args.profile, seed=args.seed, overrides=args.set or [],
                             scope=None))
        try:
            print(f"collateral: {args.connections} benign connections ({', '.join(classes)}) under {args.profile} ...",
                  file=sys.stderr)
            attempts = collateral.run(state, args.connections, args.seed or 1, classes)
        finally:
            down(state)
        profile = args.profile
    rows = collateral.summarize(attempts)
    if args.format == "json":
        print(json.dumps({"profile": profile, "summary": rows,
                          "attempts": [a.__dict__ for a in attempts]}, indent=1))
        return 0
    _print_table([{**r, "rate": f"{r['rate']:.1%}", "95% ci": f"{r['ci95'][0]:.1%}-{r['ci95'][1]:.1%}",
                   "names": ", ".join(r["names"][:4]) + (" ..." if len(r["names"]) > 4 else "")} for r in rows],
                 ["class", "outcome", "connections", "hits", "rate", "95% ci", "names"])
    return 0


@verb
def add_collateral(sub) -> None:
    p = sub.add_parser("collateral", help="drive benign traffic through a censor; report what it blocked, reset, "
                                          "throttled or poisoned, with intervals")
    p.add_argument("--profile", default="gfw", help="censor profile name or YAML path")
    p.add_argument("--topology", default="isp", help="topology to bring up")
    p.add_argument("--connections", type=int, default=60, help="benign connections made")
    p.add_argument("--classes", help="comma-separated, from: https, http, dns, download, upload, ssh, quic (default: all)")
    p.add_argument("--from-run", metavar="RUN|DIR",
                   help="sum up a run's background traffic (traffic: on client nodes) instead of bringing one up")
    p.add_argument("--seed", type=int, help="seed for the profile's probabilistic rules and the traffic mix")
    p.add_argument("--set", action="append", metavar="RULE.FIELD=VALUE", help="override a profile rule (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_collateral)
