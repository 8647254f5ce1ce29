"""tunnelwall: a network testbed with an emulated censoring firewall (Mininet
topologies, an Open vSwitch border, a censor built from published measurements).

Verbs (containerlab-style): ``up`` / ``down`` / ``inspect`` / ``cleanup``,
``validate`` for topologies, profiles, tools and exercises, ``exec`` into a node, ``classify``
a capture offline, ``verify`` circumvention tools against a censor.

Every user error ends as one line on stderr and a non-zero exit code; a
traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tunnelwall import __version__
from tunnelwall.base.errors import TunnelwallError, exit_code_of
from tunnelwall.base.table import format_table


def _print_table(rows: list[dict], columns: list[str], out=None) -> None:
    (out or sys.stdout).write(format_table(rows, columns) + "\n")


def cmd_up(args) -> int:
    from tunnelwall.base.runstate import name_prefix
    from tunnelwall.runtime.network import UpOptions, up
    state = up(UpOptions(topology=args.topology, profile=args.profile, no_censor=args.no_censor,
                         placement=args.placement, seed=args.seed, overrides=args.set or [],
                         scope=None if args.scope == "auto" else (args.scope or ""),
                         datapath=args.datapath))
    print(f"run {state.run_id}: '{state.layout.topology}' is up in {state.up_seconds}s"
          f"{' with censor profile ' + state.profile if state.profile else ' (no censor)'}"
          f"{' (scope ' + state.scope + ': names start with ' + name_prefix(state.scope) + ')' if state.scope else ''}")
    for alias, target in _aliases_of(state.profile):
        print(f"  profile {alias} = {target}")
    print(f"  logs: {state.log_dir}")
    print(f"  switch: Open vSwitch, {'kernel' if state.datapath == 'kernel' else 'userspace'} datapath")
    if state.api:
        print(f"  controller API: http://127.0.0.1:{state.api.port}/  (token in {state.api.token_file})")
    print("  nodes: " + ", ".join(f"{n} ({i.role})" for n, i in state.nodes.items()))
    for line in _condition_lines(state):
        print(f"  link {line}")
    for line in _hops_lines(state):
        print(f"  hops {line}")
    for line in try_lines(state):
        print(line)
    if args.cli:
        import signal

        from tunnelwall.runtime.network import down

        def hung_up(_sig, _frame):
            # The terminal went away: leave the shell and tear down, as 'exit' does.
            raise SystemExit(129)
        signal.signal(signal.SIGHUP, hung_up)
        try:
            from tunnelwall.cli.nodeshell import NodeShell
            NodeShell(state).loop()
        finally:
            down(state)
            print("down: removed everything the run created")
    return 0


def _aliases_of(profile: str | None) -> list[tuple[str, str]]:
    """The aliases (gfw) that stand for *profile*, so output says what gfw means."""
    from tunnelwall.middlebox.profiles import ALIASES
    return [(a, t) for a, t in ALIASES.items() if t == profile]


def try_lines(state) -> list[str]:
    """What to type next: a fetch the censor blocks, then the verdict, then down."""
    run = f"--run {state.scope} " if state.scope else ""
    client, server = _first_of_role(state, "client") or "c1", _address_of(state, _first_of_role(state, "server"))
    # ping is never inspected: the example is a fetch the censor profiles block by name.
    return [f"  try:   tunnelwall {run}exec {client} -- curl -s -m 5 -H 'Host: blocked.example' http://{server}/",
            f"         tunnelwall {run}verdicts        (the censor's decisions; -f follows)",
            f"         tunnelwall {run}down"]


def _first_of_role(state, role: str) -> str | None:
    return next(iter(state.layout.by_role(role)), None)


def _address_of(state, node: str | None) -> str:
    """The node's first IPv4 address, without its prefix length ("SERVER" when there is none)."""
    found = state.layout.nodes.get(node) if node else None
    for iface in found.interfaces.values() if found is not None else ():
        if iface.ip:
            return iface.ip
    return "SERVER"


def _hops_lines(state) -> list[str]:
    """Router hops on links (``hops: N``): the routers chained between the two ends."""
    out = []
    for chain in state.layout.hops if state.layout is not None else []:
        shown = chain.routers[0] if chain.count == 1 else f"{chain.routers[0]} .. {chain.routers[-1]}"
        out.append(f"{chain.near} -> {chain.far}: {chain.count} router hop{'s' if chain.count > 1 else ''} ({shown})")
    return out


def _condition_lines(state) -> list[str]:
    """Links with delay, loss and the like, and what applies them (netem or the userspace relay)."""
    out = []
    for link in state.layout.links if state.layout is not None else []:
        if link.conditions:
            a, b = link.ends
            out.append(f"{a.node}-{b.node}: {link.conditions} by {link.conditions_by}"
                       + (" (sch_netem is not in this kernel: a userspace relay on "
                          f"{link.relay.node}:{link.relay.iface})" if link.conditions_by == "relay" else ""))
    return out


def cmd_down(args) -> int:
    from tunnelwall.runtime.network import down
    removed = down()
    print(f"down: removed {len(removed)} resources" if removed else "down: no run was up")
    return 0


def cmd_cleanup(args) -> int:
    from tunnelwall.base.runstate import active_run
    from tunnelwall.runtime.cleanup import cleanup_all, teardown
    from tunnelwall.runtime.network import require_root
    require_root()
    if args.cleanup_run:
        # One run only: what its state file lists; every other run is left alone.
        removed = teardown(active_run(args.cleanup_run))
    else:
        removed = cleanup_all()
    for item in removed:
        print(f"removed {item}")
    print(f"cleanup: {len(removed)} resources removed" if removed else "cleanup: nothing of ours was left")
    return 0


def cmd_runs(args) -> int:
    from tunnelwall.base.runstate import all_runs, name_prefix
    rows = [{"run": r.run_id, "scope": r.scope or "default", "names": name_prefix(r.scope) + "*",
             "topology": Path(r.topology).stem, "profile": r.profile or "-", "status": r.status,
             "api": f"127.0.0.1:{r.api.port}" if r.api else "-"} for r in all_runs()]
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    elif rows:
        _print_table(rows, ["run", "scope", "names", "topology", "profile", "status", "api"])
    else:
        print("no run is up")
    return 0


def cmd_inspect(args) -> int:
    from tunnelwall.base.runstate import active_run
    state = active_run()
    if state is None:
        print("no run is up" if args.format == "table" else json.dumps({"run": None}))
        return 0
    rows = []
    for name, info in state.nodes.items():
        for iface, i in info.interfaces.items():
            rows.append({"node": name, "role": info.role, "netns": info.netns, "iface": iface,
                         "address": i.address or "-", "address6": i.address6 or "-", "mac": i.mac, "peer": i.peer})
    if args.format == "json":
        print(json.dumps({"run": state.run_id, "topology": state.topology, "profile": state.profile,
                          "status": state.status, "log_dir": state.log_dir,
                          "layout": state.layout.to_json() if state.layout is not None else {},
                          "processes": [p.__dict__ for p in state.processes]}, indent=1))
    else:
        print(f"run {state.run_id}  topology {state.topology}  profile {state.profile or '-'}  status {state.status}"
              f"  datapath {state.datapath}")
        _print_table(rows, ["node", "role", "netns", "iface", "address", "address6", "mac", "peer"])
        for line in _condition_lines(state):
            print(f"link {line}")
        for line in _hops_lines(state):
            print(f"hops {line}")
    return 0


def cmd_exec(args) -> int:
    from tunnelwall.runtime.network import exec_in
    if not args.command:
        raise TunnelwallError("exec: give a command after '--', e.g. tunnelwall exec c1 -- ping -c1 198.18.0.10")
    cmd = args.command[1:] if args.command[0] == "--" else args.command
    return exec_in(args.node, cmd).returncode


_EXTRA_VERBS = []


def verb(fn):
    """Register a function that adds a verb: ``fn(sub)`` calls
    ``sub.add_parser(NAME, help=...)``. Every verb, here and in the verb
    modules, is registered this way; sub-verbs are nested parsers
    (:func:`sub_verbs`)."""
    _EXTRA_VERBS.append(fn)
    return fn


def sub_verbs(parser: argparse.ArgumentParser, dest: str = "action", metavar: str = "ACTION",
              default: str | None = None):
    """The one way to give a verb sub-verbs (``exercise start``, ``cluster
    head``): nested parsers whose name lands in ``args.<dest>``. With
    *default*, the verb alone means that sub-verb (``profiles`` = ``profiles list``)."""
    subs = parser.add_subparsers(dest=dest, metavar=metavar, required=default is None)
    if default is not None:
        parser.set_defaults(**{dest: default})
    return subs


def build_parser() -> argparse.ArgumentParser:
    from tunnelwall.cli import helptext
    ap = argparse.ArgumentParser(prog="tunnelwall", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"tunnelwall {__version__}")
    ap.add_argument("--run", metavar="RUN", help="with several runs up: the one to act on (run id, or scope: "
                                                 "'default' or its character); also $TUNNELWALL_RUN")
    loud = ap.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="results only: progress and notes on stderr are dropped, errors still shown")
    loud.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")
    for extra in _EXTRA_VERBS:
        extra(sub)
    return helptext.finish(ap)


@verb
def add_up(sub) -> None:
    p = sub.add_parser("up", help="bring up a topology (with its censor)")
    p.add_argument("topology", nargs="?", default="isp", help="catalogue name, YAML path or star:N")
    p.add_argument("--profile", help="censor profile name or YAML path (default: the topology's)")
    p.add_argument("--no-censor", action="store_true", help="same network, no controller or middlebox")
    p.add_argument("--placement", choices=["tap", "inline"], help="override the topology's censor placement")
    p.add_argument("--seed", type=int, help="seed for the profile's probabilistic rules")
    p.add_argument("--set", action="append", metavar="RULE.FIELD=VALUE",
                   help="override a profile rule, e.g. --set fet.probability=1 (repeatable)")
    p.add_argument("--cli", action="store_true", help="open a node shell; leaving it tears the network down")
    p.add_argument("--datapath", choices=["auto", "kernel", "user"],
                   help="Open vSwitch's datapath: the kernel's where its module is loaded (auto, the default; "
                        "also $TUNNELWALL_DATAPATH), or insist on one")
    p.add_argument("--scope", metavar="S|auto",
                   help="run beside other runs: 'auto' picks a free scope, or give one character (1-9, a-z); "
                        "the run's names then start with tS- (default: the default scope, names tw-)")
    p.set_defaults(func=cmd_up)


@verb
def add_down(sub) -> None:
    p = sub.add_parser("down", help="tear down the running topology (the one --run names, with several up)")
    p.set_defaults(func=cmd_down)


@verb
def add_cleanup(sub) -> None:
    p = sub.add_parser("cleanup", help="remove everything tunnelwall created on this machine (even after kill -9)")
    p.add_argument("cleanup_run", nargs="?", metavar="RUN", help="only this run (id or scope); others are left alone")
    p.set_defaults(func=cmd_cleanup)


@verb
def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the runs that are up")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_runs)


@verb
def add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="show the running topology")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_inspect)


@verb
def add_exec(sub) -> None:
    p = sub.add_parser("exec", help="run a command in a node's namespace (its arguments passed on untouched)")
    p.add_argument("node", help="node name, as 'inspect' lists them")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command after '--'")
    p.set_defaults(func=cmd_exec)


def main(argv: list[str] | None = None) -> int:
    _load_verb_modules()
    args = build_parser().parse_args(argv)
    _set_loudness(args.quiet, args.verbose)
    if args.run:
        # Every verb finds its run through runstate.active_run(), which reads this.
        import os
        os.environ["TUNNELWALL_RUN"] = args.run
    def verb() -> int:
        try:
            return args.func(args) or 0
        except BrokenPipeError:
            return 0
        except Exception as err:   # noqa: BLE001 - the Docker SDK's errors are user-facing too
            if type(err).__module__.split(".")[0] != "docker":
                raise
            print(f"tunnelwall: Docker: {err}", file=sys.stderr)
            return 3
    return exit_code_of(verb)


class _ErrorsOnly:
    """stderr for --quiet: only the lines that report an error (they start
    with 'tunnelwall:'); progress and notes are dropped."""

    def __init__(self, stream):
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.startswith("tunnelwall:") or line.startswith("Traceback") or line.startswith("usage:"):
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _set_loudness(quiet: bool, verbose: bool) -> None:
    import logging
    import os
    # WARNING is Python's own default: without -v/-q nothing changes for libraries' logs.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING,
                        format="%(name)s: %(message)s")
    if verbose:
        os.environ["TUNNELWALL_VERBOSE"] = "1"      # child processes log more too
    if quiet:
        sys.stderr = _ErrorsOnly(sys.stderr)


def _load_verb_modules() -> None:
    import importlib
    for mod in ("tunnelwall.cli.classify", "tunnelwall.cli.probe", "tunnelwall.cli.exercise", "tunnelwall.cli.images",
                "tunnelwall.cli.profiles", "tunnelwall.cli.capture", "tunnelwall.cli.graph", "tunnelwall.cli.compare",
                "tunnelwall.cli.collateral", "tunnelwall.cli.cluster", "tunnelwall.cli.fidelity",
                "tunnelwall.cli.verify", "tunnelwall.cli.validate", "tunnelwall.cli.verdicts"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as err:
            if err.name != mod and not mod.startswith(str(err.name)):
                raise


if __name__ == "__main__":
    # Run as a module, this file would be a second copy of tunnelwall.cli
    # that the verb modules do not register with: use the real one.
    from tunnelwall.cli.main import main as _main
    sys.exit(_main())
