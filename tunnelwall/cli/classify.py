"""``tunnelwall classify FILE.pcap --profile NAME``: the censor, offline."""

from __future__ import annotations

import json
import sys

from tunnelwall.cli.main import _print_table, verb


def cmd_classify(args) -> int:
    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.offline import classify_pcap
    profile = profiles.load(args.profile)
    if args.format == "json":
        # One line per flow as soon as the engine is done with it: memory
        # stays bounded by the flows alive at once, however long the capture.
        result = classify_pcap(args.pcap, profile, seed=args.seed,
                               on_flow=lambda report: print(json.dumps(report.as_dict())))
        print(json.dumps({"summary": result.summary(), "stats": result.stats}))
        return 0
    result = classify_pcap(args.pcap, profile, seed=args.seed)
    rows = [r.as_dict() for r in result.flows]
    shown = rows if args.limit <= 0 else rows[:args.limit]
    table = [{"flow": f"{r['transport']} {r['client']}:{r['client_port']} > {r['server']}:{r['server_port']}",
              "protocol": r["protocol"] or "-", "rule": r["rule"] or "-",
              "action": r["action"] + ("" if r["decided"] else " (undecided)"),
              "pkt": r["packet_index"] or "-", "ms": r["ms"] if r["ms"] is not None else "-",
              "packets": r["packets"]} for r in shown]
    _print_table(table, ["flow", "protocol", "rule", "action", "pkt", "ms", "packets"])
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more flows (--limit 0 shows all)")
    print()
    _print_table(result.summary(), ["protocol", "rule", "action", "flows"])
    s = result.stats
    print(f"\n{s['packets']} packets, {s['flows']} flows, {s['blocked_packets']} packets after a blocking "
          f"verdict, profile {profile.name}", file=sys.stderr)
    return 0


@verb
def add_classify(sub) -> None:
    p = sub.add_parser("classify", help="classify the flows of a pcap file with a censor profile")
    p.add_argument("pcap", help="capture file (pcap or pcapng)")
    p.add_argument("--profile", default="gfw", help="profile name or YAML path (default: gfw)")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="table: flows and a summary; json: one line per flow, then the summary")
    p.add_argument("--seed", type=int, help="seed for probabilistic rules (default: the profile's)")
    p.add_argument("--limit", type=int, default=100, help="flows shown in the table (0: all)")
    p.set_defaults(func=cmd_classify)
