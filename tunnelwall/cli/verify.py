"""The ``verify`` and ``tools`` verbs."""

from __future__ import annotations

import json
import sys
import time

from tunnelwall.cli.main import _print_table, verb
from tunnelwall.base.errors import TunnelwallError


def cmd_verify(args) -> int:
    from tunnelwall.harness import report, stats
    from tunnelwall.harness.runner import ERROR
    from tunnelwall.harness.verify import DEFAULT_TOOLS, VerifyOptions, verify
    from tunnelwall.harness import spec
    if args.trials < 1 or (args.requests is not None and not 1 <= args.requests <= 20):
        raise TunnelwallError("verify: --trials is at least 1, and --requests a whole number 1..20")
    tools = _split(args.tools) if args.tools else list(DEFAULT_TOOLS)
    if tools == ["all"]:
        tools = list(spec.builtin())
    opts = VerifyOptions(profiles=_split(args.profile), tools=tools,
                         topology=args.topology, bytes=args.bytes, seed=args.seed, overrides=args.set or [],
                         placement=args.placement, ipv6=args.ipv6, trials=args.trials,
                         keep_residual=args.keep_residual, requests=args.requests)
    expectations = _expectations(args.expect or [])
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.monotonic()
    results = verify(opts)
    summary = stats.summarize(results, time.monotonic() - t0) if opts.trials > 1 else None
    meta = {"started": started, "topology": opts.topology, "profiles": ",".join(opts.profiles),
            "family": "IPv6" if opts.ipv6 else "IPv4",
            "bytes": opts.bytes, "seed": opts.seed, "overrides": " ".join(opts.overrides) or "-"}
    if summary:
        meta["trials"] = opts.trials
    if args.format == "json":
        print(report.to_json(results, meta, summary))
    else:
        print(report.table(results))
        if summary:
            print()
            _print_table(stats.table_rows(summary), ["profile", "tool", "trials", "blocked", "block rate", "95% ci",
                                                     "detection pkt (min/med/max)", "mbit/s (median)", "errors"])
            print(f"\n{summary[0]['trials_per_minute']} trials/minute", file=sys.stderr)
    if args.report:
        files = report.write_all(results, meta, args.report, summary)
        print(f"reports: {', '.join(str(p) for p in files.values())}", file=sys.stderr)
    failed = []
    for r in results:
        want = expectations.get((r.profile, r.tool)) or expectations.get(("*", r.tool))
        if want and r.outcome != want:
            failed.append(f"{r.profile}/{r.tool}: expected {want}, got {r.outcome}")
    for line in failed:
        print(f"tunnelwall: expectation not met: {line}", file=sys.stderr)
    errors = [r for r in results if r.outcome == ERROR]
    return 1 if failed or errors else 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _expectations(items: list[str]) -> dict:
    out = {}
    for item in items:
        try:
            left, outcome = item.split("=", 1)
            profile, _, tool = left.rpartition("/")
            out[(profile or "*", tool)] = outcome.upper()
        except ValueError:
            raise TunnelwallError(f"--expect '{item}': write [PROFILE/]TOOL=OUTCOME, e.g. gfw/wireguard=BLOCKED") from None
        if out[(profile or "*", tool)] not in ("PASSED", "BLOCKED", "DEGRADED", "ERROR"):
            raise TunnelwallError(f"--expect '{item}': outcome is one of PASSED, BLOCKED, DEGRADED, ERROR")
    return out


def cmd_tools(args) -> int:
    from tunnelwall.harness import spec
    rows = []
    for name, path in spec.builtin().items():
        s = spec.load(str(path))
        rows.append({"tool": name, "description": s.description})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["tool", "description"])
    return 0


@verb
def add_verify(sub) -> None:
    p = sub.add_parser("verify", help="run circumvention tools through the censor and report what survives")
    p.add_argument("--profile", default="gfw", help="censor profile(s), comma-separated (default: gfw)")
    p.add_argument("--tools", help="tools, comma-separated: built-in names or YAML paths; 'all' for every built-in "
                                   "(default: the matrix's tools)")
    p.add_argument("--topology", default="isp", help="topology (default: isp)")
    p.add_argument("--bytes", type=int, default=2_000_000, help="bytes fetched through each tool (default 2 MB)")
    p.add_argument("--seed", type=int, help="seed for the profiles' probabilistic rules")
    p.add_argument("--set", action="append", metavar="RULE.FIELD=VALUE",
                   help="override a profile rule, e.g. --set fet.probability=1 (repeatable)")
    p.add_argument("--placement", choices=["tap", "inline"], help="override the censor placement")
    p.add_argument("--ipv6", action="store_true", help="run the tools over IPv6 (the topology's IPv6 addresses)")
    p.add_argument("--trials", type=int, default=1, metavar="N",
                   help="run each tool N times; report block rates with 95%% Wilson intervals")
    p.add_argument("--keep-residual", action="store_true",
                   help="with --trials: keep residual blocks from one trial to the next (default: lifted)")
    p.add_argument("--requests", type=int, metavar="N",
                   help="override each tool's traffic.requests (1: one tunnel connection per trial)")
    p.add_argument("--expect", action="append", metavar="[PROFILE/]TOOL=OUTCOME",
                   help="fail (exit 1) unless TOOL's outcome is OUTCOME, e.g. gfw/wireguard=BLOCKED")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--report", metavar="DIR", help="write results.json, junit.xml and report.html into DIR")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("tools", help="list the built-in tool definitions")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_tools)
