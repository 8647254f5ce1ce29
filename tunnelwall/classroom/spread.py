"""A class over several machines: student groups on the workers of a cluster.

Model. A *group* is one testbed of the exercise: its topology's student
hosts (ten in ``classroom``), behind a censor of its own. ``exercise start
NAME --students N --cluster ADDRESS`` makes ceil(N / hosts per testbed)
groups, asks every worker what it can hold (``capacity``: free memory and
cores, measured per testbed, and free run scopes), places the groups on the
workers with the most room first, and starts each with a task pinned to
its worker that starts the exercise there in a free run scope (a child
process of the worker, :mod:`tunnelwall.classroom.task`). The testbed outlives the task, as any ``tunnelwall up`` does
(namespaces and daemons recorded under /run/tunnelwall on that machine);
the *class file* (JSON, on the instructor's machine) records where each
group runs, its run id, its student hosts and its live view.

The instructor's overview (``exercise overview --class FILE``) runs
the exercise's checks for every group on its own worker and shows each
student's goals (PASS/FAIL) with the group's worker and live view;
``--html FILE`` writes the same as one self-contained page.
``exercise stop --class FILE`` tears every group's run down on its worker. Students get in with ``ssh WORKER`` and then
``tunnelwall --run RUN exec HOST -- bash`` (the class file has both).

The live view (REST API and web page) listens on 127.0.0.1 of its worker,
as on one machine: the overview gives, per group, the ``ssh -L`` that
brings it to the instructor's machine, rather than opening the API to the
network.

Built on the cluster of :mod:`tunnelwall.harness.cluster` (Dask
distributed): tasks pinned to a worker with ``workers=[address]``, so a
group's check and cleanup run where its testbed is.
"""

from __future__ import annotations

import html
import json
import os
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness.cluster import WORKER_PYTHON, _require_dask, on_this_worker, security

# What one classroom testbed costs, measured on this project's 2-core
# machine (README, benchmarks/classroom.py, docs/cluster.md): 146 MB
# resident for the 15-host classroom with its censor (four up at once:
# 537 MB), 0.6 % of a core idle, and ten students fetching at once used
# about one core. Capacity keeps 25 % headroom on
# memory and lets two testbeds share a core (students mostly read and type).
TESTBED_MB = 200
TESTBEDS_PER_CORE = 2


@dataclass
class Group:
    number: int
    worker: str                      # the worker's name (its host name unless given); tasks find it by name
    host: str                        # the machine students ssh to
    run: str = ""
    scope: str = ""
    hosts: dict[str, str] = field(default_factory=dict)     # student -> host in this testbed
    api_port: int | None = None
    token_file: str = ""


@dataclass
class ClassPlan:
    exercise: str
    cluster: str
    tls: str | None
    students: int
    groups: list[Group]
    started: float = 0.0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> "ClassPlan":
        try:
            doc = json.loads(Path(path).read_text())
            groups = [Group(**g) for g in doc.pop("groups")]
            return cls(groups=groups, **doc)
        except FileNotFoundError:
            raise TunnelwallError(f"{path}: no such class file (tunnelwall exercise start ... --cluster)") from None
        except (ValueError, TypeError, KeyError) as err:
            raise TunnelwallError(f"{path}: not a class file ({err})") from None


# -- tasks (run on the workers) -------------------------------------------------

def worker_capacity() -> dict:
    """Run on a worker: how many more testbeds this machine can hold."""
    from tunnelwall.base.procs import mem_available_mb
    from tunnelwall.base.runstate import SCOPES, all_runs
    mem_mb = int(mem_available_mb())
    cores = len(os.sched_getaffinity(0))
    runs = all_runs()
    used = {r.scope for r in runs}
    free_scopes = sum(1 for s in ("",) + tuple(SCOPES) if s not in used)
    by_memory = mem_mb // TESTBED_MB
    by_cores = max(0, cores * TESTBEDS_PER_CORE - len(runs))
    return {"host": socket.gethostname(), "memory_mb": mem_mb, "cores": cores, "runs": len(runs),
            "free": max(0, min(by_memory, by_cores, free_scopes)),
            "limit": min(("memory", by_memory), ("cores", by_cores), ("scopes", free_scopes), key=lambda x: x[1])[0]}


def run_here(argv: list[str]) -> dict:
    """Run on a worker: a task's child process (classroom.task) by the worker's own interpreter."""
    res = subprocess.run(on_this_worker(argv), capture_output=True, text=True)
    return {"code": res.returncode, "stdout": res.stdout, "stderr": res.stderr[-2000:], "host": socket.gethostname()}


# -- the instructor's side ------------------------------------------------------

def _client(address: str, tls: str | None):
    _require_dask()
    from distributed import Client
    try:
        return Client(address, security=security(tls, "client"), timeout="15s")
    except (OSError, TimeoutError) as err:
        raise TunnelwallError(f"cannot reach the cluster head at {address} ({err})") from None


def _on(client, address: str, fn, *args):
    """*fn(*args)* as a task on the worker at *address* only: a group's
    testbed, and so its check and cleanup, live on one machine."""
    return client.submit(fn, *args, workers=[address], allow_other_workers=False, pure=False)


def _task_on(client, address: str, verb: str, **kwargs):
    """A :mod:`tunnelwall.classroom.task` child on the worker at *address*
    (a task whose result is ``run_here``'s)."""
    from tunnelwall.classroom import task
    return _on(client, address, run_here, task.argv(WORKER_PYTHON, verb, **kwargs))


def _result(fut, what: str):
    """A task's result; a task that failed (its worker died, its command
    could not run) is one line naming what it was for."""
    try:
        return fut.result()
    except Exception as err:     # noqa: BLE001 - Dask re-raises the task's own error, whatever it is
        raise TunnelwallError(f"{what}: {type(err).__name__}: {err}") from None


def _command(fut) -> dict:
    """A ``_task_on`` task's result; a task that did not run to the
    end (its worker died) reads as a failed command saying why."""
    try:
        return _result(fut, "the task failed")
    except TunnelwallError as err:
        return {"code": 1, "stdout": "", "stderr": str(err), "host": ""}


def _workers(client) -> dict[str, str]:
    """Worker name -> address of every connected worker."""
    return {str(w["name"]): addr for addr, w in client.scheduler_info()["workers"].items()}


def place(capacities: dict[str, dict], groups: int) -> list[str]:
    """Worker names for *groups* groups: each to the worker with the most
    room left (ties by name), so a class spreads evenly and fills big
    machines first. Raises when the cluster cannot hold them all."""
    room = {name: cap["free"] for name, cap in capacities.items()}
    total = sum(room.values())
    if total < groups:
        detail = ", ".join(f"{n}: {c['free']} ({c['limit']})" for n, c in sorted(capacities.items()))
        raise TunnelwallError(f"the cluster has room for {total} more testbeds, the class needs {groups} ({detail})")
    out = []
    for _ in range(groups):
        name = max(sorted(room), key=lambda n: room[n])
        room[name] -= 1
        out.append(name)
    return out


def start_class(exercise: str, students: int, address: str, tls: str | None, seed: int | None,
                say=print) -> ClassPlan:
    from tunnelwall.classroom import exercises
    from tunnelwall.topologies import resolve
    from tunnelwall.topologies.model import Role
    ex = exercises.load(exercise)
    topo = resolve(ex.topology)
    seats = [name for name, node in topo.nodes.items() if node.role == Role.CLIENT]
    per_group = len(seats)
    if students < 1:
        raise TunnelwallError("--students: at least 1")
    if per_group == 0:
        raise TunnelwallError(f"exercise '{exercise}': its topology '{ex.topology}' has no student hosts")
    n_groups = -(-students // per_group)
    with _client(address, tls) as client:
        workers = _workers(client)
        if not workers:
            raise TunnelwallError(f"no worker is connected to {address}")
        caps = {name: _result(_on(client, addr, worker_capacity), f"asking worker {name} for its room")
                for name, addr in workers.items()}
        names = place(caps, n_groups)
        say(f"[class] {students} students in {n_groups} groups of up to {per_group} on {len(set(names))} of "
            f"{len(workers)} workers")
        futures = [_task_on(client, workers[name], "start", exercise=exercise, seed=seed) for name in names]
        groups: list[Group] = []
        failures = []
        for i, (name, fut) in enumerate(zip(names, futures), start=1):
            out = _command(fut)
            g = Group(number=i, worker=name, host=out["host"] or name)
            groups.append(g)
            try:
                doc = json.loads(out["stdout"]) if out["code"] == 0 else None
            except ValueError:
                doc = None
            if doc is None:
                why = (out["stderr"].strip().splitlines() or [f"exit {out['code']}"])[-1]
                failures.append(f"group {i} on {name}: {why}")
                continue
            g.run, g.scope = doc["run"], doc["scope"]
            g.api_port, g.token_file = doc.get("api_port"), doc.get("token_file", "")
            say(f"[class] group {i} up on {name} (run {g.run})")
        # Students in order, s001 ..., fill group 1's hosts, then group 2's, ...
        for k in range(students):
            groups[k // per_group].hosts[f"s{k + 1:03d}"] = seats[k % per_group]
        plan = ClassPlan(exercise=exercise, cluster=address, tls=tls, students=students, groups=groups,
                         started=time.time())
        if failures:
            stop_class(plan, say=lambda _m: None)
            raise TunnelwallError("the class did not start (what started was stopped): " + "; ".join(failures))
    return plan


def overview(plan: ClassPlan) -> list[dict]:
    """One row per student and goal: its group, worker, host and result."""
    rows = []
    with _client(plan.cluster, plan.tls) as client:
        workers = _workers(client)
        futures = {}
        for g in plan.groups:
            addr = workers.get(g.worker)
            if addr is None:
                futures[g.number] = None
                continue
            futures[g.number] = _task_on(client, addr, "check", exercise=plan.exercise, run=g.run)
        for g in plan.groups:
            fut = futures[g.number]
            results: dict[str, list[dict]] = {}
            note = ""
            if fut is None:
                note = f"worker {g.worker} is not connected"
            else:
                out = _command(fut)
                try:
                    for o in json.loads(out["stdout"]):
                        results.setdefault(o["host"], []).append(o)
                except ValueError:
                    note = (out["stderr"].strip().splitlines() or ["check failed"])[-1]
            for student, host in sorted(g.hosts.items()):
                checks = results.get(host) or [{"check": "-", "passed": False, "detail": note or "no result"}]
                for o in checks:
                    rows.append({"student": student, "group": g.number, "worker": g.worker, "host": host,
                                 "goal": o["check"], "result": "PASS" if o["passed"] else "FAIL",
                                 "detail": o.get("detail", ""), "run": g.run})
    return rows


def way_in(g: Group, host: str) -> str:
    return f"ssh -t {g.host} tunnelwall --run {g.run} exec {host} -- bash"


def live_view(g: Group) -> str:
    """How the instructor reaches group *g*'s live view from their machine
    (local port 8800 + the group's number, so every group has its own)."""
    if not g.api_port:
        return ""
    local_port = 8800 + g.number
    return (f"ssh -N -L {local_port}:127.0.0.1:{g.api_port} {g.host}   then "
            f"http://127.0.0.1:{local_port}/?token=$(ssh {g.host} cat {g.token_file})")


def overview_html(plan: ClassPlan, rows: list[dict]) -> str:
    """A self-contained page: per group its worker and live view, then every student's goals."""
    esc = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>{esc(plan.exercise)}: class overview</title>",
             "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px}.PASS{background:#cfc}.FAIL{background:#fcc}"
             "code{font-size:12px}</style>",
             f"<h1>{esc(plan.exercise)}</h1><p>{plan.students} students in {len(plan.groups)} groups, "
             f"checked {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}; "
             f"{sum(r['result'] == 'PASS' for r in rows)} of {len(rows)} goals passed.</p>",
             "<table><tr><th>group</th><th>worker</th><th>run</th><th>live view</th></tr>"]
    for g in plan.groups:
        parts.append(f"<tr><td>{g.number}</td><td>{esc(g.worker)}</td><td>{esc(g.run)}</td>"
                     f"<td><code>{esc(live_view(g))}</code></td></tr>")
    parts.append("</table><table><tr><th>student</th><th>group</th><th>host</th><th>goal</th><th>result</th>"
                 "<th>detail</th><th>way in</th></tr>")
    groups = {g.number: g for g in plan.groups}
    for r in rows:
        parts.append(f"<tr><td>{esc(r['student'])}</td><td>{r['group']}</td><td>{esc(r['host'])}</td>"
                     f"<td>{esc(r['goal'])}</td><td class={r['result']}>{r['result']}</td>"
                     f"<td>{esc(str(r['detail']))}</td><td><code>{esc(way_in(groups[r['group']], r['host']))}"
                     "</code></td></tr>")
    parts.append("</table>")
    return "\n".join(parts) + "\n"


def stop_class(plan: ClassPlan, say=print) -> list[str]:
    """Every group's run torn down, on its worker; returns what could not be stopped."""
    left = []
    with _client(plan.cluster, plan.tls) as client:
        workers = _workers(client)
        futures = []
        for g in plan.groups:
            if not g.run:
                continue
            addr = workers.get(g.worker)
            if addr is None:
                left.append(f"group {g.number}: worker {g.worker} is not connected (run {g.run} is still up there)")
                continue
            futures.append((g, _task_on(client, addr, "cleanup", run=g.run)))
        for g, fut in futures:
            out = _command(fut)
            if out["code"] != 0:
                left.append(f"group {g.number} on {g.worker}: {out['stderr'].strip()[-200:]}")
            else:
                say(f"[class] group {g.number} on {g.worker}: run {g.run} removed")
    return left
