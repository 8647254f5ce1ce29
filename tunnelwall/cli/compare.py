"""``tunnelwall compare OLD.json NEW.json``: regressions between two verify runs."""

from __future__ import annotations

import json

from tunnelwall.cli.main import _print_table, verb


def cmd_compare(args) -> int:
    from tunnelwall.harness import compare
    rows = compare.compare(compare.load(args.old), compare.load(args.new))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["profile", "tool", "old", "new", "change"])
    return 1 if any(r["change"].startswith("regression") for r in rows) else 0


@verb
def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="compare two verify results (JSON); exit 1 on a regression")
    p.add_argument("old", help="the baseline results.json")
    p.add_argument("new", help="this run's results.json")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_compare)
