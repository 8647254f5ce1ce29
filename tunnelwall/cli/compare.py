"""``tunnelwall compare OLD.json NEW.json``: regressions between two verify runs."""

from __future__ import annotations

import json

from tunnelwall.cli.main import _print_table, verb


def cmd_compare(args) -> int:
    import sys

    from tunnelwall.harness import compare
    old, new = compare.load(args.old), compare.load(args.new)
    rows = compare.compare(old, new)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["profile", "tool", "old", "new", "change"])
    for line in compare.provenance_warnings(old, new):
        print(f"tunnelwall: warning: the runs differ: {line}", file=sys.stderr)
    failed = compare.failures(rows, args.allow_removed)
    for r in failed:
        if not r["change"].startswith("regression"):
            print(f"tunnelwall: {r['profile']}/{r['tool']}: {r['change']}: this run did not check it "
                  f"(--allow-removed accepts that)", file=sys.stderr)
    return 1 if failed else 0


@verb
def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="compare two verify results (JSON); exit 1 on a regression, or when a "
                                       "cell of OLD is missing from NEW or changed profile name")
    p.add_argument("old", help="the baseline results.json")
    p.add_argument("new", help="this run's results.json")
    p.add_argument("--allow-removed", action="store_true",
                   help="a cell of OLD that NEW lacks (or has under another profile name) is not a failure")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_compare)
