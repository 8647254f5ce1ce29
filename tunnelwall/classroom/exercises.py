"""Classroom exercises: a topology, a censor, a goal, hints, and checks that
say pass or fail for each student host.

An exercise is a YAML file in ``exercises/`` (see ``find-blocked.yaml``).
Check kinds:

* ``forward``: on the student's host, ``url`` (a local port the student
  forwards through their tunnel) serves ``bytes`` bytes ``repeat`` times in a
  row (default 3). One fetch is not proof: the FET rule's exemptions let a
  random-looking first packet through now and then (a 73-byte Shadowsocks
  packet is more than half printable about 1 time in 100, exemption Ex3), and
  a tool that only works by luck has not defeated the censor;
* ``answer``: the student's answer file ``ANSWERS/<host>.yaml`` has ``key``
  equal to ``expect`` (lists compare as sets).

Scripted solutions (``solutions: {correct: ..., wrong: ...}``) run a tool
definition (server once, a client on every student host), a command per host
whose output becomes an answer, or write answers directly: instructors
demonstrate with them, and CI proves every check can pass and fail.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml


from tunnelwall.base import procs
from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import SourceError, TunnelwallError
from tunnelwall.base.runstate import RunState

EXERCISE_DIR = Path(__file__).resolve().parents[2] / "exercises"
KEYS = {"name", "title", "topology", "profile", "overrides", "placement", "goal", "hints", "checks", "solutions"}
CHECK_KINDS = ("forward", "answer")


@dataclass
class Check:
    kind: str
    description: str
    url: str = ""
    bytes: int = 0
    repeat: int = 3
    key: str = ""
    expect: object = None


@dataclass
class Exercise:
    name: str
    title: str
    topology: str
    profile: str
    goal: str
    hints: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    solutions: dict[str, dict] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    placement: str | None = None
    source: str = ""

    @property
    def directory(self) -> Path:
        return Path(self.source).parent


def catalogue(dirs: tuple[str, ...] = ()) -> dict[str, Path]:
    """Exercises by name: the repository's, then those in *dirs* (an instructor's own folder;
    a name there wins)."""
    found = {p.stem: p for p in sorted(EXERCISE_DIR.glob("*.yaml"))}
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise TunnelwallError(f"--dir {d}: not a folder")
        found.update({p.stem: p for p in sorted(folder.glob("*.y*ml"))})
    return found


def load(name: str, dirs: tuple[str, ...] = ()) -> Exercise:
    path = yamlsrc.find(name, catalogue(dirs), "exercise")
    data = yamlsrc.load(path)
    path = str(path)
    yamlsrc.check_mapping(data, path, "an exercise", KEYS,
                          required=("name", "title", "topology", "profile", "goal", "checks"), top_level=False)
    yamlsrc.validate(data, yamlsrc.load_schema(Path(__file__).resolve().parent / "exercise.schema.json"), path)
    profile = str(data["profile"])
    if profile.endswith((".yaml", ".yml")):
        profile = str(Path(path).parent / profile)
    ex = Exercise(name=str(data["name"]), title=str(data["title"]), topology=str(data["topology"]), profile=profile,
                  goal=str(data["goal"]), hints=[str(h) for h in data.get("hints", [])],
                  overrides=[str(o) for o in data.get("overrides", [])], placement=data.get("placement"),
                  source=path)
    checks = data["checks"]
    if not isinstance(checks, list) or not checks:
        raise SourceError(path, data.line_of("checks"), "checks: expected a non-empty list")
    for i, c in enumerate(checks):
        line = checks.line_of(i)
        if not isinstance(c, dict) or c.get("kind") not in CHECK_KINDS:
            raise SourceError(path, line, f"check #{i + 1}: kind must be one of {', '.join(CHECK_KINDS)}")
        if c["kind"] == "forward" and not ("url" in c and "bytes" in c):
            raise SourceError(path, line, f"check #{i + 1}: a forward check needs url and bytes")
        repeat = c.get("repeat", 3)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 20:
            raise SourceError(path, line, f"check #{i + 1}: repeat must be a whole number 1..20, not '{repeat}'")
        if c["kind"] == "answer" and not ("key" in c and "expect" in c):
            raise SourceError(path, line, f"check #{i + 1}: an answer check needs key and expect")
        ex.checks.append(Check(kind=c["kind"], description=str(c.get("description", c["kind"])),
                               url=str(c.get("url", "")), bytes=int(c.get("bytes", 0)), repeat=repeat, key=str(c.get("key", "")),
                               expect=c.get("expect")))
    sols = data.get("solutions", {})
    for which, sol in (sols or {}).items():
        if which not in ("correct", "wrong") or not isinstance(sol, dict) or \
                len({"tool", "command", "answers"} & set(sol)) != 1:
            raise SourceError(path, sols.line_of(which), f"solutions.{which}: give one of tool, command, answers")
        ex.solutions[which] = dict(sol)
    return ex


def students(state: RunState) -> list[str]:
    return state.layout.by_role("client")


def answers_dir(state: RunState, override: str | None = None) -> Path:
    """Where answers are: the students' own folders when they have accounts, else one folder."""
    if override:
        d = Path(override)
    elif state.student_accounts:
        from tunnelwall.runtime.accounts import STUDENT_ROOT
        return STUDENT_ROOT / state.run_id
    else:
        d = state.logs / "answers"
    d.mkdir(parents=True, exist_ok=True)
    return d


def answer_file(directory: Path, host: str) -> Path:
    """A student's answer file: ``<host>/<host>.yaml`` in their own folder, or ``<host>.yaml``."""
    own = directory / host
    return own / f"{host}.yaml" if own.is_dir() else directory / f"{host}.yaml"


def start(ex: Exercise, seed: int | None = None, scope: str | None = "", student_accounts: bool = True) -> RunState:
    """Bring the exercise's testbed up (*scope* as for ``up``: "" the default
    run, None the first free one: several groups of a class on one machine),
    and give each student host's student an account (runtime.accounts):
    an unprivileged shell there and a folder of their own."""
    from tunnelwall.runtime import accounts
    from tunnelwall.runtime.network import UpOptions, down, up
    state = up(UpOptions(topology=ex.topology, profile=ex.profile, overrides=ex.overrides, placement=ex.placement,
                         seed=seed, scope=scope))
    state.exercise = ex.name
    state.exercise_source = ex.source
    state.hints_shown = 0
    try:
        if student_accounts:
            # The run's log folder holds the API token, the tools' configs and
            # the verdicts: root's alone once students have accounts.
            state.logs.chmod(0o700)
            for host in students(state):
                accounts.create(state.run_id, state.scope, host)
                accounts.allow_ping(state.netns_of(host))
            state.student_accounts = True
        state.save()
    except BaseException:
        down(state)
        raise
    answers_dir(state)
    return state


def shell(state: RunState, host: str, argv: list[str] | None = None) -> list[str]:
    """The command line of *host*'s student's unprivileged shell (or of *argv* as that student)."""
    from tunnelwall.runtime import accounts
    if host not in students(state):
        raise TunnelwallError(f"'{host}' is not a student host (students: {', '.join(students(state))})")
    if not state.student_accounts:
        raise TunnelwallError("this exercise was started without student accounts")
    return accounts.shell_argv(accounts.find(state.run_id, host), state.netns_of(host), argv)


def reset(state: RunState, host: str) -> None:
    """A student starts over: their processes ended, their folder emptied, hints kept."""
    from tunnelwall.runtime import accounts
    if host not in students(state):
        raise TunnelwallError(f"'{host}' is not a student host (students: {', '.join(students(state))})")
    if state.student_accounts:
        acc = accounts.find(state.run_id, host)
        accounts.reset(acc)
        _write_hints(state, acc)
    else:
        answer_file(answers_dir(state), host).unlink(missing_ok=True)


def next_hint(ex: Exercise, state: RunState) -> tuple[int, str]:
    """Reveal the next hint to every student (written to HINTS.txt in their folder); returns (number, text)."""
    from tunnelwall.runtime import accounts
    shown = state.hints_shown
    if shown >= len(ex.hints):
        raise TunnelwallError(f"exercise '{ex.name}': all {len(ex.hints)} hints are out already")
    state.hints_shown = shown + 1
    state.save()
    if state.student_accounts:
        for acc in accounts.accounts(state.run_id):
            _write_hints(state, acc, ex)
    return shown + 1, ex.hints[shown]


def _write_hints(state: RunState, acc, ex: Exercise | None = None) -> None:
    ex = ex or load(state.exercise_source or state.exercise)
    shown = ex.hints[:state.hints_shown]
    from tunnelwall.runtime.accounts import write_file
    write_file(acc.folder / "HINTS.txt", "".join(f"hint {i}: {h}\n" for i, h in enumerate(shown, start=1)), acc)


def running(name: str | None) -> RunState:
    """The active run, which must be an exercise (*name*, when given)."""
    from tunnelwall.base.runstate import active_run
    state = active_run()
    if state is None or not state.exercise:
        raise TunnelwallError("no exercise is running on this machine (tunnelwall exercise start NAME; "
                              "a class over a cluster: --class-file FILE)")
    if name and state.exercise != name:
        raise TunnelwallError(f"the running exercise is '{state.exercise}', not '{name}'")
    return state


def _require(ex: Exercise, state: RunState | None) -> RunState:
    if state is None:
        raise TunnelwallError(f"no run is up: tunnelwall exercise start {ex.name}")
    if state.exercise != ex.name:
        raise TunnelwallError(f"the running topology is not exercise '{ex.name}' "
                              f"(it is {state.exercise or 'no exercise'}); tunnelwall down first")
    return state


def solve(ex: Exercise, state: RunState, which: str, hosts: list[str] | None = None) -> list[str]:
    """Run the scripted solution on each student host; returns what it did."""
    from tunnelwall.harness import spec as specs
    from tunnelwall.harness.runner import RunOptions, ToolRun
    state = _require(ex, state)
    if which not in ex.solutions:
        raise TunnelwallError(f"exercise '{ex.name}' has no '{which}' solution")
    sol = ex.solutions[which]
    hosts = hosts or students(state)
    # A solution replaces the previous one: stop the tool processes it started.
    for rec in state.processes:
        if rec.name.startswith("solution-"):
            procs.stop(rec)
    done = []
    if "answers" in sol:
        for host in hosts:
            plain = json.loads(json.dumps(sol["answers"]))      # line-tracking mappings -> plain data
            _write_answer(state, host, yaml.safe_dump(plain))
            done.append(f"{host}: wrote answers")
    elif "command" in sol:
        import sys
        for host in hosts:
            cmd = sol["command"].replace("{python}", sys.executable)
            res = subprocess.run(procs.in_netns(state.netns_of(host), ["sh", "-c", cmd]), capture_output=True,
                                 text=True, timeout=60)
            value = res.stdout.strip()
            _write_answer(state, host, yaml.safe_dump({sol["answer_key"]: value}))
            done.append(f"{host}: {sol['answer_key']} = {value}")
    else:
        spec = specs.load(str(ex.directory / sol["tool"]))
        spec.name = f"solution-{spec.name}"
        first = ToolRun(state, spec, RunOptions(client_node=hosts[0]))
        first.check_requirements()
        first.prepare()
        first.start_side("server")
        if not first.wait_ready("server"):
            raise TunnelwallError(f"solution server did not start: {procs.tail(first.workdir / 'server.log')}")
        for host in hosts:
            run = ToolRun(state, spec, RunOptions(client_node=host))
            run.workdir, run.values = first.workdir, {**first.values, "client_node": host,
                                                      "client_ip": run.values["client_ip"]}
            run.start_side("client", log_name=f"client-{host}.log")
            ready = run.wait_ready("client", log_name=f"client-{host}.log")
            done.append(f"{host}: {spec.description} ({'ready' if ready else 'not ready'})")
    return done


def _write_answer(state: RunState, host: str, text: str) -> None:
    """A scripted solution's answer: into the student's own folder (safely: root writes where a
    student could have left a symlink) or the run's answers folder."""
    from tunnelwall.runtime.accounts import write_file
    write_file(answer_file(answers_dir(state), host), text)


@dataclass
class Outcome:
    host: str
    check: str
    passed: bool
    detail: str


def check(ex: Exercise, state: RunState, answers: str | None = None) -> list[Outcome]:
    """Every check on every student host (hosts in parallel: a blocked
    forward takes its full timeout)."""
    state = _require(ex, state)
    directory = answers_dir(state, answers)
    with ThreadPoolExecutor(max_workers=16) as pool:
        per_host = list(pool.map(lambda host: _check_host(ex, state, host, directory), students(state)))
    return [o for outcomes in per_host for o in outcomes]


def _check_host(ex: Exercise, state: RunState, host: str, directory: Path) -> list[Outcome]:
    out = []
    for c in ex.checks:
        if c.kind == "forward":
            out.append(_check_forward(state, host, c))
            continue
        path = answer_file(directory, host)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            out.append(Outcome(host, c.description, False, f"no answer file {path}"))
            continue
        except yaml.YAMLError as err:
            out.append(Outcome(host, c.description, False, f"{path}: not YAML ({err.__class__.__name__})"))
            continue
        given = data.get(c.key) if isinstance(data, dict) else None
        out.append(Outcome(host, c.description, _same(given, c.expect), f"{c.key}: {given!r}"))
    return out


def _check_forward(state: RunState, host: str, c: Check) -> Outcome:
    """*repeat* fetches, each a new connection; the first failure decides."""
    for attempt in range(1, c.repeat + 1):
        res = subprocess.run(procs.in_netns(state.netns_of(host), [
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "10",
            "--connect-timeout", "4", c.url]), capture_output=True, text=True, timeout=30)
        code, _, size = res.stdout.partition(" ")
        if not (code == "200" and size.strip() == str(c.bytes)):
            return Outcome(host, c.description, False,
                           f"fetch {attempt} of {c.repeat}: HTTP {code or '-'}, {size or 0} bytes")
    return Outcome(host, c.description, True, f"{c.repeat} fetches: HTTP 200, {c.bytes} bytes each")


def _same(given, expect) -> bool:
    if isinstance(expect, list):
        return isinstance(given, list) and {str(x).lower() for x in given} == {str(x).lower() for x in expect}
    return str(given).strip().lower() == str(expect).strip().lower()
