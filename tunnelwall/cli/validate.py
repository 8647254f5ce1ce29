"""``tunnelwall validate FILE...``: check topology, profile, tool and exercise
files without touching the network; ``tunnelwall topologies``: the
topology catalogue.

A file's kind is read from its content, not its path (a copied profile
``iran-mine.yaml`` is a profile wherever it lies): a topology has
``nodes``, a profile ``rules``, an exercise ``checks``, a tool ``traffic``
or ``extends``. Each file is loaded by its own loader (a tool's
``extends`` is followed), then what it names must exist: a topology's
censor profile, an exercise's topology, profile and solution tool. Every
file given is reported, each on one line; the exit code is 2 when any
was bad.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tunnelwall.base.errors import SourceError, TunnelwallError
from tunnelwall.cli.main import _print_table, verb

KINDS = ("topology", "profile", "tool", "exercise")


def kind_of(data) -> str | None:
    """The kind of a parsed YAML document by its keys, or None."""
    if not isinstance(data, dict):
        return None
    keys = set(data)
    if "rules" in keys:
        return "profile"
    if "checks" in keys or "goal" in keys:
        return "exercise"
    if "nodes" in keys or "links" in keys:
        return "topology"
    if keys & {"traffic", "extends", "server", "client"}:
        return "tool"
    return None


def _kind_of_name(item: str) -> str | None:
    """The kind of a catalogue name (not a file)."""
    from tunnelwall import topologies
    from tunnelwall.classroom import exercises
    from tunnelwall.harness import spec
    from tunnelwall.middlebox import profiles
    if item in topologies.catalogue() or item.startswith("star:"):
        return "topology"
    for kind, names in (("profile", profiles.available()), ("tool", spec.builtin()),
                        ("exercise", exercises.catalogue())):
        if item in names:
            return kind
    return None


def check(item: str, kind: str | None = None) -> str:
    """Validate one file (or catalogue name); returns the ok line's detail
    ("topology 'isp', 16 hosts, ..."), raises TunnelwallError with file:line."""
    from tunnelwall.base import yamlsrc
    path = Path(item)
    data = None
    if path.exists() or path.suffix in (".yaml", ".yml"):
        data = yamlsrc.load(path)
        kind = kind or kind_of(data)
        if kind is None:
            raise SourceError(item, getattr(data, "line", None) or 1,
                              "cannot tell what this file is: a topology has 'nodes', a censor profile 'rules', "
                              "a tool 'traffic' (or 'extends'), an exercise 'checks'")
    else:
        kind = kind or _kind_of_name(item)
        if kind is None:
            raise TunnelwallError(f"'{item}': no such file, and no topology (or star:N), profile, tool or exercise "
                                  f"of that name")
    return {"topology": _topology, "profile": _profile, "tool": _tool, "exercise": _exercise}[kind](item, data)


def _topology(item: str, data) -> str:
    from tunnelwall import topologies
    t = topologies.resolve(item)
    if t.censor is not None:
        line = data["censor"].line_of("profile") if data is not None and "profile" in data["censor"] else None
        _profile_exists(t.censor.profile, item, line, "censor.profile")
    hops = sum(c.count for c in t.chains)
    return f"topology '{t.name}', {len(t.hosts())} hosts" + (f" ({hops} of them routers of link hops)" if hops else "") \
           + f", {len(t.switches())} switches, {len(t.links)} links" \
           + (f", censor profile {_named(t.censor.profile)}" if t.censor else "")


def _profile(item: str, data) -> str:
    from tunnelwall.middlebox import profiles
    p = profiles.load(item)
    return f"profile '{p.name}', {len(p.rules)} rules"


def _tool(item: str, data) -> str:
    from tunnelwall.harness import spec
    s = spec.load(item)
    base = f", extends '{data['extends']}'" if data is not None and "extends" in data else ""
    return f"tool '{s.name}'{base}"


def _exercise(item: str, data) -> str:
    from tunnelwall import topologies
    from tunnelwall.classroom import exercises
    from tunnelwall.harness import spec
    ex = exercises.load(item)
    lines = data if data is not None else {}
    try:
        topologies.resolve(ex.topology)
    except TunnelwallError as err:
        raise SourceError(ex.source, _line(lines, "topology"), f"topology: {err}") from None
    _profile_exists(ex.profile, ex.source, _line(lines, "profile"), "profile")
    for which, sol in ex.solutions.items():
        if "tool" in sol:
            try:
                spec.load(str(ex.directory / sol["tool"]))
            except TunnelwallError as err:
                raise SourceError(ex.source, _line(lines.get("solutions", {}), which),
                                  f"solutions.{which}.tool: {err}") from None
    return f"exercise '{ex.name}', {len(ex.checks)} checks, topology {ex.topology}, profile {_named(ex.profile)}"


def _named(profile: str) -> str:
    """A profile as given, with what an alias stands for (gfw (= gfw-2025))."""
    from tunnelwall.middlebox.profiles import ALIASES
    return f"{profile} (= {ALIASES[profile]})" if profile in ALIASES else profile


def _line(mapping, key) -> int | None:
    return mapping.line_of(key) if hasattr(mapping, "line_of") else None


def _profile_exists(name: str, where: str, line: int | None, field: str) -> None:
    from tunnelwall.middlebox import profiles
    try:
        profiles.load(name)
    except TunnelwallError as err:
        raise SourceError(where, line, f"{field}: {err}") from None


def cmd_validate(args) -> int:
    kind = "profile" if args.profile else args.kind
    bad = 0
    for item in args.files:
        try:
            print(f"{item}: ok ({check(item, kind)})")
        except TunnelwallError as err:
            bad += 1
            print(f"tunnelwall: {err}", file=sys.stderr)
    if bad and len(args.files) > 1:
        print(f"tunnelwall: validate: {bad} of {len(args.files)} files have errors", file=sys.stderr)
    return 2 if bad else 0


def cmd_topologies(args) -> int:
    import json

    from tunnelwall import topologies
    rows = []
    for name, path in topologies.catalogue().items():
        t = topologies.resolve(str(path))
        # hosts: every namespace, the routers of link hops included (they cost bring-up time too)
        rows.append({"topology": name, "hosts": len(t.hosts()), "switches": len(t.switches()),
                     "hops": "+".join(str(c.count) for c in t.chains) or "-",
                     "censor": _named(t.censor.profile) if t.censor else "-",
                     "description": (t.description or "").strip().splitlines()[0] if t.description else ""})
    rows.append({"topology": "star:N", "hosts": "N+4", "switches": "-", "hops": "-", "censor": "log-only",
                 "description": "generated: N clients on one switch behind the censor (tunnelwall up star:50)"})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["topology", "hosts", "switches", "hops", "censor", "description"])
    return 0


@verb
def add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check topology, profile, tool or exercise files (the kind is read from "
                                        "each file) without touching the network")
    p.add_argument("files", nargs="+", metavar="FILE", help="YAML files or catalogue names (isp, star:50, gfw, ...)")
    p.add_argument("--kind", choices=KINDS, help="treat every file as this kind (default: read from each file)")
    p.add_argument("--profile", action="store_true", help="the same as --kind profile")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("topologies", help="list the topology catalogue, a line each")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_topologies)
