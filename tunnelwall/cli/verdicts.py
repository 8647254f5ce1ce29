"""``tunnelwall verdicts [-f] [--flow FILTER] [--format table|json]``: the
censor's decisions with rule, packet and time; ``-f`` follows them as they
happen until Ctrl-C (exit 0: that is how following ends)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tunnelwall.cli.main import verb

COLUMNS = ("time", "action", "rule", "protocol", "flow", "pkt", "ms", "name")


def row(seen) -> dict:
    v = seen.verdict
    clock = time.strftime("%H:%M:%S", time.localtime(v.time)) + f".{int(v.time * 1000) % 1000:03d}"
    return {"time": clock, "action": v.action, "rule": v.rule or "-", "protocol": v.protocol or "-",
            "flow": str(v.flow), "pkt": v.packet_index, "ms": round(v.ms, 1), "name": seen.name or "-"}


WIDTHS = {"time": 12, "action": 9, "rule": 16, "protocol": 10, "flow": 46, "pkt": 4, "ms": 7}


def format_line(seen, colour: bool) -> str:
    """One fixed-width line (a followed stream cannot size its columns from the rows to come)."""
    from tunnelwall.cli.helptext import paint
    r = row(seen)
    cells = [str(r[c]).ljust(WIDTHS[c]) for c in COLUMNS[:-1]] + [str(r["name"])]
    line = " ".join(cells).rstrip()
    if seen.verdict.blocks:
        return paint(line, "red", colour)
    return paint(line, "dim", colour) if seen.verdict.action in ("allow", "log") else line


def header() -> str:
    return " ".join(c.ljust(WIDTHS.get(c, 0)) for c in COLUMNS).rstrip()


def source_for(args, state=None):
    """The controller's API of the active run, or the verdict log (``--log``,
    or the run's own when it has no controller API)."""
    from tunnelwall.base.errors import TunnelwallError
    from tunnelwall.runtime import verdictwatch
    if args.log:
        return verdictwatch.LogSource(Path(args.log))
    from tunnelwall.base.runstate import active_run
    state = state or active_run()
    if state is None:
        raise TunnelwallError("verdicts: no run is up (tunnelwall up TOPO), or give --log FILE")
    if not state.api:
        log = state.files.verdict_log
        if not log:
            raise TunnelwallError("verdicts: this run has no censor (it was brought up with --no-censor)")
        return verdictwatch.LogSource(Path(log))
    from tunnelwall.runtime.api import Api
    return verdictwatch.ApiSource(Api(state), step_timeout=args.step_timeout)


def show(args, state=None, out=None) -> int:
    """The verb's body; the node shell calls it too."""
    from tunnelwall.cli.helptext import color_enabled
    from tunnelwall.runtime import verdictwatch
    out = out or sys.stdout
    terms = verdictwatch.parse_filter(args.flow or [])
    source = source_for(args, state)
    colour = args.format == "table" and color_enabled(out)

    def emit(seen) -> None:
        if not verdictwatch.matches(terms, seen):
            return
        if args.format == "json":
            out.write(json.dumps({"installed": seen.installed, **seen.verdict.as_dict()}) + "\n")
        else:
            out.write(format_line(seen, colour) + "\n")
        out.flush()

    if args.format == "table":
        out.write(header() + "\n")
    try:
        if args.follow:
            for seen in verdictwatch.follow(source, args.interval):
                emit(seen)
        else:
            for seen in source.fetch():
                emit(seen)
    except KeyboardInterrupt:
        # Ctrl-C is how following ends: a clean end, not an error.
        out.flush()
        return 0
    return 0


def cmd_verdicts(args) -> int:
    return show(args)


def add_arguments(p) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing verdicts as they happen (Ctrl-C ends)")
    p.add_argument("--flow", action="append", metavar="FILTER",
                   help="only verdicts matching every term: KEY=VALUE (client, server, port, cport, sport, "
                        "transport, protocol, rule, action, name) or a bare word matched anywhere, "
                        "e.g. --flow 'client=10.0.0.11 port=80' (repeatable)")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="table: one aligned line per verdict; json: one JSON object per line")
    p.add_argument("--log", metavar="FILE", help="read a verdict log (verdicts.jsonl) instead of the controller")
    p.add_argument("--interval", type=float, default=0.5, help="with -f: seconds between polls")
    p.add_argument("--step-timeout", type=float, default=5.0,
                   help="seconds one request to the controller may take before it is an error")


@verb
def add_verdicts(sub) -> None:
    p = sub.add_parser("verdicts", help="the censor's decisions (rule, packet, time); -f follows them live")
    add_arguments(p)
    p.set_defaults(func=cmd_verdicts)
