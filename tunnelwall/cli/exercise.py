"""``tunnelwall exercise list|start|shell|hint|reset|solve|check|overview|stop``."""

from __future__ import annotations

import argparse
import json
import textwrap

from tunnelwall.cli.main import _print_table, sub_verbs, verb
from tunnelwall.base.errors import TunnelwallError


def cmd_exercise(args) -> int:
    from tunnelwall.classroom import exercises
    from tunnelwall.base.runstate import active_run
    dirs = tuple(args.dir or ())
    if args.action == "list":
        rows = [{"exercise": n, "title": exercises.load(str(p)).title, "file": str(p)}
                for n, p in exercises.catalogue(dirs).items()]
        _print_table(rows, ["exercise", "title", "file"])
        return 0
    if args.action in ("shell", "reset", "hint"):
        return _student(args, dirs)
    if args.action == "overview" or args.cluster or (args.action == "stop" and _class_file_given(args)):
        return _class(args)
    if args.students:
        raise TunnelwallError("--students places a class over a cluster (--cluster ADDRESS); on one machine the "
                              "class is the topology's student hosts")
    if args.action == "stop":
        from tunnelwall.runtime.network import down
        state = exercises.running(args.name)
        removed = down(state)
        print(f"exercise {args.name}: stopped (run {state.run_id}, {len(removed)} resources removed, "
              "student accounts included)")
        return 0
    ex = exercises.load(args.name, dirs)
    if args.action == "start":
        state = exercises.start(ex, seed=args.seed, scope=None if args.scope == "auto" else (args.scope or ""),
                                student_accounts=not args.no_accounts)
        answers = exercises.answers_dir(state)
        if args.format == "json":
            from tunnelwall.classroom.task import started
            print(json.dumps(started(state)))
            return 0
        print(f"exercise '{ex.name}': {ex.title}\n")
        # With accounts, a student's answers go to their own folder, $ANSWERS in their shell.
        where = "$ANSWERS" if state.student_accounts else str(answers)
        print(textwrap.indent(ex.goal.replace("ANSWERS", where).strip(), "  "))
        if ex.hints:
            print(f"\nhints: {len(ex.hints)}, given one at a time: tunnelwall exercise hint {ex.name}")
        hosts = exercises.students(state)
        if state.student_accounts:
            print(f"\nstudents: {', '.join(hosts)}: each has an unprivileged shell on their host, "
                  f"with their own folder ($ANSWERS):\n  tunnelwall exercise shell {hosts[0]}    "
                  "(run it for the student, e.g. as their ssh ForceCommand; see docs/instructors.md)")
        else:
            print(f"\nstudents: {', '.join(hosts)}   (tunnelwall exec HOST -- COMMAND)")
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


def _class_file_given(args) -> bool:
    from pathlib import Path
    return bool(args.class_file) or Path(f"class-{args.name}.json").exists()


def _student(args, dirs: tuple[str, ...]) -> int:
    """shell, reset and hint: one student, or the class's next hint, on this machine's run."""
    import subprocess

    from tunnelwall.classroom import exercises
    from tunnelwall.runtime.network import require_root
    require_root()
    state = exercises.running(None)
    if args.action == "hint":
        ex = exercises.load(state.exercise_source or state.exercise, dirs)
        number, text = exercises.next_hint(ex, state)
        print(f"hint {number} of {len(ex.hints)}: {text}")
        if state.student_accounts:
            print("(written to HINTS.txt in every student's folder)")
        return 0
    if args.action == "reset":
        exercises.reset(state, args.student)
        print(f"{args.student}: processes ended, folder emptied")
        return 0
    argv = exercises.shell(state, args.student, args.command[1:] if args.command[:1] == ["--"] else args.command)
    from tunnelwall.runtime.accounts import find
    return subprocess.run(argv, cwd=str(find(state.run_id, args.student).folder)).returncode


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
    p = sub.add_parser("exercise", help="classroom exercises: list, start, give students shells and hints, check")
    # What a sub-verb does not take reads as unset.
    p.set_defaults(func=cmd_exercise, name=None, dir=None, seed=None, scope=None, students=None, cluster=None,
                   tls=None, class_file=None, html=None, format="table", solution="correct", hosts=None,
                   answers=None, no_accounts=False, student=None, command=[])
    actions = sub_verbs(p)

    def exercise_name(a, nargs=None):
        a.add_argument("name", nargs=nargs, help="the exercise, e.g. find-blocked (tunnelwall exercise list)")

    def folders(a):
        a.add_argument("--dir", action="append", metavar="DIR",
                       help="also take exercises from this folder (repeatable; a name there wins)")

    def fmt(a):
        a.add_argument("--format", choices=["table", "json"], default="table", help="output format")

    def cluster(a):
        a.add_argument("--class-file", metavar="FILE", help="a class over a cluster: where it is recorded "
                                                            "(default class-NAME.json)")

    a = actions.add_parser("list", help="the exercises (the repository's and --dir's)")
    folders(a)
    a = actions.add_parser("start", help="bring the exercise's network up; make each student an account")
    exercise_name(a)
    folders(a)
    a.add_argument("--seed", type=int, help="seed for the profile's probabilistic rules")
    a.add_argument("--scope", metavar="S|auto", help="run beside other runs ('auto': a free scope)")
    a.add_argument("--no-accounts", action="store_true",
                   help="no student accounts (students use root's tunnelwall exec, as before)")
    a.add_argument("--students", type=int, help="with --cluster: how many students")
    a.add_argument("--cluster", metavar="ADDRESS", help="place the class's groups (one testbed each) "
                                                        "on the workers of this cluster head")
    a.add_argument("--tls", metavar="DIR", help="with --cluster: the certificates of 'tunnelwall cluster certs'")
    cluster(a)
    fmt(a)
    a = actions.add_parser("shell", help="a student's unprivileged shell on their host (root runs it for them)")
    a.add_argument("student", help="the student's host, e.g. st01")
    a.add_argument("command", nargs=argparse.REMAINDER, help="a command instead of a shell, after '--'")
    a = actions.add_parser("hint", help="give every student the exercise's next hint")
    exercise_name(a, "?")
    folders(a)
    a = actions.add_parser("reset", help="a student starts over: their processes ended, folder emptied")
    a.add_argument("student", help="the student's host, e.g. st01")
    a = actions.add_parser("solve", help="run a scripted solution on the student hosts (demonstrations, CI)")
    exercise_name(a)
    folders(a)
    a.add_argument("--solution", choices=["correct", "wrong"], default="correct", help="which solution")
    a.add_argument("--hosts", help="only these student hosts (comma-separated; default: all)")
    a = actions.add_parser("check", help="grade every student host: PASS or FAIL per goal (exit 1 unless all pass)")
    exercise_name(a)
    folders(a)
    a.add_argument("--answers", metavar="DIR", help="the students' answer files (default: the run's)")
    fmt(a)
    a = actions.add_parser("overview", help="a class over a cluster: every student's goals")
    exercise_name(a)
    cluster(a)
    a.add_argument("--html", metavar="FILE", help="also write it as one HTML page")
    fmt(a)
    a = actions.add_parser("stop", help="stop the exercise: its network and the students' accounts "
                                        "(a class over a cluster: every group)")
    exercise_name(a)
    cluster(a)
