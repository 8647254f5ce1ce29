"""``tunnelwall exercise list|start|solve|check NAME``."""

from __future__ import annotations

import json
import textwrap

from tunnelwall.cli.main import _print_table, verb
from tunnelwall.base.errors import TunnelwallError


def cmd_exercise(args) -> int:
    from tunnelwall.classroom import exercises
    from tunnelwall.base.runstate import active_run
    if args.action == "list":
        rows = [{"exercise": n, "title": exercises.load(n).title} for n in exercises.catalogue()]
        _print_table(rows, ["exercise", "title"])
        return 0
    if not args.name:
        raise TunnelwallError(f"exercise {args.action}: name the exercise (tunnelwall exercise list)")
    ex = exercises.load(args.name)
    if args.action == "start":
        state = exercises.start(ex, seed=args.seed)
        answers = exercises.answers_dir(state)
        print(f"exercise '{ex.name}': {ex.title}\n")
        print(textwrap.indent(ex.goal.replace("ANSWERS", str(answers)).strip(), "  "))
        if ex.hints:
            print("\nhints:")
            for h in ex.hints:
                print(f"  - {h}")
        print(f"\nstudents: {', '.join(exercises.students(state))}   (tunnelwall exec HOST -- COMMAND)")
        if state.api:
            print(f"live view: http://127.0.0.1:{state.api['port']}/?token=$(cat {state.api['token_file']})")
        print(f"check:     tunnelwall exercise check {ex.name}")
        return 0
    state = active_run()
    if args.action == "solve":
        hosts = [h.strip() for h in args.hosts.split(",")] if args.hosts else None
        for line in exercises.solve(ex, state, args.solution, hosts):
            print(line)
        return 0
    outcomes = exercises.check(ex, state, args.answers)
    if args.format == "json":
        print(json.dumps([o.__dict__ for o in outcomes], indent=1))
    else:
        _print_table([{"host": o.host, "goal": o.check, "result": "PASS" if o.passed else "FAIL",
                       "detail": o.detail} for o in outcomes], ["host", "goal", "result", "detail"])
        passed = sum(o.passed for o in outcomes)
        print(f"\n{passed}/{len(outcomes)} checks passed")
    return 0 if all(o.passed for o in outcomes) else 1


@verb
def add_exercise(sub) -> None:
    p = sub.add_parser("exercise", help="classroom exercises: list, start, solve (scripted), check")
    p.add_argument("action", choices=["list", "start", "solve", "check"])
    p.add_argument("name", nargs="?")
    p.add_argument("--solution", choices=["correct", "wrong"], default="correct", help="for solve")
    p.add_argument("--hosts", help="for solve: only these student hosts (comma-separated)")
    p.add_argument("--answers", metavar="DIR", help="for check: the students' answer files (default: the run's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_exercise)
