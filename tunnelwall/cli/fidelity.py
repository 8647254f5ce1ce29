"""``tunnelwall fidelity [PROFILE]``: every published vector the project
holds, replayed offline against a profile; per vector the published
outcome, the emulated one, whether they agree, and the source. A
disagreement is a finding (exit code 0); only bad input is an error."""

from __future__ import annotations

import json

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.cli.main import _print_table, verb


def all_vectors() -> list:
    """The middlebox's vector sets and the harness's (Geneva's strategies,
    whose interpreter lives with the harness)."""
    from tunnelwall.harness import geneva
    from tunnelwall.middlebox import fidelity
    return fidelity.vector_sets() + geneva.fidelity_vectors()


def cmd_fidelity(args) -> int:
    from tunnelwall.middlebox import fidelity
    from tunnelwall.middlebox.fidelity import render
    names = [n.strip() for n in args.profile.split(",") if n.strip()] if args.profile else fidelity.profile_names()
    if not names:
        raise TunnelwallError("fidelity: give a profile name or YAML path, e.g. tunnelwall fidelity gfw")
    reports = [fidelity.evaluate(name, all_vectors()) for name in names]
    if args.format == "json":
        print(json.dumps([r.as_dict() for r in reports], indent=1))
        return 0
    if args.format == "markdown":
        print(render.markdown(reports))
        return 0
    for i, rep in enumerate(reports):
        if i:
            print()
        print(render.summary_line(rep))
        if rep.rows:
            _print_table(render.table_rows(rep), ["set", "vector", "published", "emulated", "agree", "source"])
        for line in render.notes(rep):
            print(f"  disagreement: {line}")
    return 0


@verb
def add_fidelity(sub) -> None:
    p = sub.add_parser("fidelity", help="replay the published test vectors against a profile, offline, "
                                        "and compare the outcomes")
    p.add_argument("profile", nargs="?", help="profile name(s), comma-separated, or a YAML path "
                                              "(default: every built-in profile)")
    p.add_argument("--format", choices=["table", "json", "markdown"], default="table",
                   help="output format (markdown: the table docs/censors.md carries)")
    p.set_defaults(func=cmd_fidelity)
