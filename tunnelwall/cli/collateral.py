"""``tunnelwall collateral --profile P``: what the censor costs ordinary users."""

from __future__ import annotations

import json
import sys

from tunnelwall.cli.main import _print_table, verb


def cmd_collateral(args) -> int:
    from tunnelwall.harness import collateral
    from tunnelwall.runtime.network import UpOptions, down, up
    state = up(UpOptions(topology=args.topology, profile=args.profile, seed=args.seed, overrides=args.set or []))
    try:
        print(f"collateral: {args.connections} benign connections under {args.profile} ...", file=sys.stderr)
        attempts = collateral.run(state, args.connections, args.seed or 1)
    finally:
        down(state)
    rows = collateral.summarize(attempts)
    if args.format == "json":
        print(json.dumps({"profile": args.profile, "summary": rows,
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
    p.add_argument("--profile", default="gfw")
    p.add_argument("--topology", default="isp")
    p.add_argument("--connections", type=int, default=60)
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", metavar="RULE.FIELD=VALUE")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_collateral)
