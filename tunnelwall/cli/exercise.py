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
    if args.action in ("overview", "stop") or args.cluster:
        return _class(args)
    if args.students:
        raise TunnelwallError("--students places a class over a cluster (--cluster ADDRESS); on one machine the "
                              "class is the topology's student hosts")
    ex = exercises.load(args.name)
    if args.action == "start":
        state = exercises.start(ex, seed=args.seed, scope=None if args.scope == "auto" else (args.scope or ""))
        answers = exercises.answers_dir(state)
        if args.format == "json":
            from tunnelwall.classroom.task import started
            print(json.dumps(started(state)))
            return 0
        print(f"exercise '{ex.name}': {ex.title}\n")
        print(textwrap.indent(ex.goal.replace("ANSWERS", str(answers)).strip(), "  "))
        if ex.hints:
            print("\nhints:")
            for h in ex.hints:
                print(f"  - {h}")
        print(f"\nstudents: {', '.join(exercises.students(state))}   (tunnelwall exec HOST -- COMMAND)")
        if state.api:
            print(f"live view: http://127.0.0.1:{state.api.port}/?token=$(cat {state.api.token_file})")
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


def _class(args) -> int:
    """A class over the workers of a cluster (classroom.spread)."""
    from pathlib import Path

    from tunnelwall.classroom import spread
    from tunnelwall.harness.verify import progress
    path = Path(args.class_file or f"class-{args.name}.json")
    if args.action == "start":
        if not args.students:
            raise TunnelwallError("exercise start --cluster: say how many students (--students N)")
        if path.exists():
            raise TunnelwallError(f"{path}: a class file is already there (exercise stop --class-file {path} first)")
        plan = spread.start_class(args.name, args.students, args.cluster, args.tls, args.seed, say=progress)
        plan.save(path)
        rows = [{"student": st, "group": g.number, "worker": g.worker, "host": h, "way in": spread.way_in(g, h)}
                for g in plan.groups for st, h in sorted(g.hosts.items())]
        if args.format == "json":
            print(json.dumps({"class_file": str(path), "students": rows}, indent=1))
        else:
            _print_table(rows, ["student", "group", "worker", "host", "way in"])
            print(f"\nclass file: {path}\noverview:   tunnelwall exercise overview {args.name} --class-file {path}"
                  f" [--html overview.html]\nstop:       tunnelwall exercise stop {args.name} --class-file {path}")
        return 0
    if args.action not in ("overview", "stop"):
        raise TunnelwallError(f"exercise {args.action}: not with --cluster (start, overview or stop)")
    plan = spread.ClassPlan.load(path)
    if args.action == "stop":
        left = spread.stop_class(plan, say=progress)
        if left:
            raise TunnelwallError("not everything was stopped: " + "; ".join(left))
        path.unlink()
        return 0
    rows = spread.overview(plan)
    if args.html:
        Path(args.html).write_text(spread.overview_html(plan, rows))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        _print_table(rows, ["student", "group", "worker", "host", "goal", "result", "detail"])
        print(f"\n{sum(r['result'] == 'PASS' for r in rows)}/{len(rows)} goals passed")
        for g in plan.groups:
            print(f"group {g.number} live view: {spread.live_view(g)}")
    return 0


@verb
def add_exercise(sub) -> None:
    p = sub.add_parser("exercise", help="classroom exercises: list, start, solve (scripted), check")
    p.add_argument("action", choices=["list", "start", "solve", "check", "overview", "stop"])
    p.add_argument("name", nargs="?")
    p.add_argument("--solution", choices=["correct", "wrong"], default="correct", help="for solve")
    p.add_argument("--hosts", help="for solve: only these student hosts (comma-separated)")
    p.add_argument("--answers", metavar="DIR", help="for check: the students' answer files (default: the run's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--scope", metavar="S|auto", help="for start: run beside other runs ('auto': a free scope)")
    p.add_argument("--students", type=int, help="for start --cluster: how many students")
    p.add_argument("--cluster", metavar="ADDRESS", help="for start: place the class's groups (one testbed each) "
                                                        "on the workers of this cluster head")
    p.add_argument("--tls", metavar="DIR", help="with --cluster: the certificates of 'tunnelwall cluster certs'")
    p.add_argument("--class-file", metavar="FILE", help="a class over a cluster: where it is recorded "
                                                        "(default class-NAME.json); overview and stop read it")
    p.add_argument("--html", metavar="FILE", help="for overview: also write it as one HTML page")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_exercise)
