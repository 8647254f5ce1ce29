"""The ``verify`` and ``tools`` verbs."""

from __future__ import annotations

import json
import sys
import time

from tunnelwall.cli.main import _print_table, verb
from tunnelwall.base.errors import TunnelwallError


def cmd_verify(args) -> int:
    from tunnelwall.harness import expect, matrix, report
    from tunnelwall.harness.runner import ERROR, ToolResult
    from tunnelwall.harness.verify import DEFAULT_TOOLS, VerifyOptions, alias_lines, document, resolve, verify
    from tunnelwall.harness import spec
    from tunnelwall.middlebox.profiles import ALIASES
    if args.trials < 1 or (args.requests is not None and not 1 <= args.requests <= 20):
        raise TunnelwallError("verify: --trials is at least 1, and --requests a whole number 1..20")
    if args.jobs < 1:
        raise TunnelwallError("verify: --jobs is at least 1")
    if args.cluster and args.jobs > 1:
        raise TunnelwallError("verify: --cluster or --jobs, not both (the cluster's workers have slots)")
    tools = _split(args.tools) if args.tools else list(DEFAULT_TOOLS)
    every = tools == ["all"]
    if every:
        tools = list(spec.builtin())
    # The edge: aliases and paths become the names the results carry, once.
    opts = resolve(VerifyOptions(profiles=_split(args.profile), tools=tools,
                                 topology=args.topology, bytes=args.bytes, seed=args.seed, overrides=args.set or [],
                                 placement=args.placement, ipv6=args.ipv6, trials=args.trials,
                                 keep_residual=args.keep_residual, requests=args.requests, inner=args.inner,
                                 shard=matrix.parse_shard(args.shard) if args.shard else None))
    expectations = expect.bind([expect.parse(e) for e in args.expect or []], opts.profiles, opts.tools,
                               opts.profile_given, opts.tool_given, ALIASES)
    for line in alias_lines(opts):
        print(f"tunnelwall: {line}", file=sys.stderr)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.monotonic()
    mixed = None
    if args.cluster or args.jobs > 1:
        from tunnelwall.harness.verify import verify_jobs, progress
        if args.cluster:
            from tunnelwall.harness.cluster import verify_cluster
            merged = verify_cluster(opts, args.cluster, args.tls, args.chunk, say=progress)
        else:
            merged = verify_jobs(opts, args.jobs)
        results = [ToolResult.from_dict(r) for r in merged["results"]]
        mixed = merged["meta"].get("provenance_mixed")
    else:
        results = verify(opts)
    doc = document(results, opts, started, time.monotonic() - t0, jobs=args.jobs, cluster=args.cluster)
    if mixed:
        doc["meta"]["provenance_mixed"] = mixed
    misses = expect.evaluate(expectations, results)
    policy = report.JunitPolicy(expectations=tuple(expectations), misses=tuple(misses),
                                outcomes_fail=args.junit_outcomes_fail)
    present(doc, args.format, args.report, policy)
    for miss in misses:
        print(f"tunnelwall: expectation not met: {miss}", file=sys.stderr)
    # "all" means every built-in tool this machine can run: the others are
    # reported (ERROR, with the missing kernel feature or program) but do
    # not fail the run; a tool named explicitly must run.
    errors = [r for r in results if r.outcome == ERROR and not (every and r.unsupported)]
    return 1 if misses or errors else 0


def present(doc: dict, fmt: str, report_dir: str | None, policy=None) -> None:
    """Print a results document (a verify's, or merged) as a table or JSON,
    and write the report files when asked."""
    from tunnelwall.harness import report, stats
    from tunnelwall.harness.runner import ToolResult
    results = [ToolResult.from_dict(r) for r in doc["results"]]
    summary = doc.get("summary")
    if fmt == "json":
        print(json.dumps(doc, indent=1, default=str))
    else:
        print(report.table(results))
        if summary:
            print()
            _print_table(stats.table_rows(summary), ["profile", "tool", "trials", "blocked", "block rate", "95% ci",
                                                     "detection pkt (min/med/max)", "mbit/s (median)", "errors"])
            from tunnelwall.harness import charts
            print()
            print(charts.text_bars(summary))
            if summary[0].get("trials_per_minute"):
                print(f"\n{summary[0]['trials_per_minute']} trials/minute", file=sys.stderr)
    if report_dir:
        files = report.write_all(results, doc["meta"], report_dir, summary, policy)
        print(f"reports: {', '.join(str(p) for p in files.values())}", file=sys.stderr)


def cmd_merge(args) -> int:
    from tunnelwall.harness import matrix
    merged = matrix.merge([(path, matrix.read(path)) for path in args.files])
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(merged, fh, indent=1, default=str)
        print(f"merged {len(args.files)} files, {len(merged['results'])} cells: {args.output}", file=sys.stderr)
    for line in merged["meta"].get("provenance_mixed", []):
        print(f"tunnelwall: warning: the parts differ in provenance: {line}", file=sys.stderr)
    if args.report or not args.output or args.format == "json":
        present(merged, args.format, args.report)
    return 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_tools(args) -> int:
    from tunnelwall.harness import spec
    rows = []
    for name, path in spec.builtin().items():
        s = spec.load(str(path))
        unmet = s.unmet_requirements()
        rows.append({"tool": name, "description": s.description, "runs_here": not unmet,
                     "why_not": "; ".join(unmet)})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            r["runs here"] = "yes" if r["runs_here"] else f"no: {r['why_not']}"
        _print_table(rows, ["tool", "description", "runs here"])
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
    p.add_argument("--inner", choices=["https", "http"], default="https",
                   help="what goes through each tool: HTTPS to the outside web server, as a browser sends it "
                        "(default; TLS inside a TLS tunnel), or plain HTTP (each tool's traffic.http_url)")
    p.add_argument("--expect", action="append", metavar="[PROFILE/]TOOL=OUTCOME[@RATE]",
                   help="fail (exit 1) unless TOOL's outcome is OUTCOME, e.g. gfw/wireguard=BLOCKED; with --trials, "
                        "a share of the trials: shadowsocks=BLOCKED@>=0.7 (or @<=0.3). An expectation that "
                        "matches no cell is an error before anything runs (repeatable)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only the K-th of N interleaved parts of the matrix (tools x profiles x trials); "
                        "join the parts with 'tunnelwall merge'")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="spread the matrix over N testbeds side by side (N processes, one run scope each)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the matrix on the workers of a cluster head (tunnelwall cluster head), "
                        "e.g. tcp://127.0.0.1:8786")
    p.add_argument("--tls", metavar="DIR", help="with --cluster: the certificates of 'tunnelwall cluster certs'")
    p.add_argument("--chunk", type=int, default=0, metavar="N",
                   help="with --cluster: cells per task (default: about two tasks per worker slot)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.add_argument("--report", metavar="DIR", help="write results.json, junit.xml and report.html into DIR")
    p.add_argument("--junit-outcomes-fail", action="store_true",
                   help="in junit.xml, every BLOCKED or DEGRADED cell is a failure (default: only a missed "
                        "--expect or an ERROR; other outcomes are properties)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("merge", help="join the JSON results of 'verify --shard K/N' runs into one result")
    p.add_argument("files", nargs="+", metavar="RESULTS.json", help="the shards' results (verify --shard K/N --format json)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the merged results JSON here")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.add_argument("--report", metavar="DIR", help="also write results.json, junit.xml and report.html into DIR")
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("tools", help="list the built-in tool definitions")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_tools)
