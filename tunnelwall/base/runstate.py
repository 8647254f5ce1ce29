"""The record of one run: every resource tunnelwall creates, written down
*before* it is created (a daemon: right after it starts, by PID and start
time, which exist only then), so that ``tunnelwall cleanup`` can remove all
of it even after the creating process was killed with SIGKILL, and touch
nothing else.

State lives in ``/run/tunnelwall`` (tmpfs: a reboot clears it together with
the namespaces and bridges it describes); logs live in
``/var/log/tunnelwall/<run-id>`` and outlive the run.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.layout import Layout, NodeLayout

STATE_DIR = Path(os.environ.get("TUNNELWALL_STATE_DIR", "/run/tunnelwall"))
LOG_ROOT = Path(os.environ.get("TUNNELWALL_LOG_DIR", "/var/log/tunnelwall"))
NETNS_PREFIX = "tw-"
BRIDGE_LABEL = "tunnelwall-run"   # OVS bridge external_ids key marking our bridges
# Several runs at once: the first (default) run's names start with "tw-"
# (tw-c1, tw-border, tw-border-3); a further run gets a one-character scope
# S and names starting with "tS-" (t1-c1, t1-border-3). One character keeps
# every name the same length, within Linux's 15-byte interface names.
SCOPES = "123456789abcdefghijklmnopqrstuvwxyz"


def name_prefix(scope: str = "") -> str:
    return f"t{scope}-" if scope else NETNS_PREFIX


@dataclass
class ProcessRecord:
    name: str
    pid: int
    starttime: int            # /proc/PID/stat field 22: tells a recycled PID apart
    netns: str | None = None
    log: str | None = None
    argv: list[str] = field(default_factory=list)


@dataclass
class ApiEndpoint:
    """The controller's REST API (127.0.0.1) and the file holding its token."""
    port: int
    token_file: str


@dataclass
class RunFiles:
    """Named paths of a censored run."""
    verdict_log: str | None = None        # the controller's verdicts, one JSON line each
    socket: str | None = None             # the middlebox <-> controller Unix socket
    controller_config: str | None = None  # the controller's configuration (JSON)


# What a run state written before its fields were named kept in "files"
# (read by RunState.from_json, so a run brought up by an older tunnelwall
# can still be brought down).
_FORMERLY_IN_FILES = ("datapath", "placement", "ct_zone", "exercise", "up_seconds")


@dataclass
class RunState:
    run_id: str
    scope: str = ""            # "" for the default run, else one of SCOPES (see name_prefix)
    topology: str = ""
    profile: str | None = None
    status: str = "creating"   # creating -> up -> stopping
    created: float = field(default_factory=time.time)
    owner_pid: int = field(default_factory=os.getpid)
    log_dir: str = ""
    backend: str = "mininet"   # what built the network (tunnelwall.topologies.backend_for)
    # Open vSwitch's datapath the run's bridges use, "kernel" or "user"
    # (topologies/datapath.py); runs recorded before the choice used the userspace one.
    datapath: str = "user"
    placement: str | None = None      # the censor's: tap or inline (None: no censor)
    ct_zone: int | None = None        # the run's own conntrack zone (flows.offload: conntrack)
    exercise: str | None = None       # the exercise the run was brought up for
    exercise_source: str | None = None   # ... its file
    hints_shown: int = 0              # the exercise's hints given so far (staged)
    student_accounts: bool = False    # students have unprivileged accounts (runtime/accounts.py)
    up_seconds: float | None = None   # how long bringing it up took
    netns: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)
    root_ifaces: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    layout: Layout | None = None      # nodes, addresses, switch ports (planned once, topologies/layout.py)
    api: ApiEndpoint | None = None    # the controller's REST API (censored runs)
    files: RunFiles = field(default_factory=RunFiles)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["processes"] = [asdict(p) for p in self.processes]
        out["layout"] = self.layout.to_json() if self.layout is not None else None
        out["api"] = asdict(self.api) if self.api is not None else None
        out["files"] = asdict(self.files)
        return out

    @classmethod
    def from_json(cls, data: dict) -> "RunState":
        data = dict(data)
        processes = [ProcessRecord(**p) for p in data.pop("processes", [])]
        files = dict(data.pop("files", None) or {})
        for key in _FORMERLY_IN_FILES:
            if key in files:
                data.setdefault(key, files.pop(key))
        known = {f.name for f in fields(RunFiles)}
        layout, api = data.pop("layout", None), data.pop("api", None)
        return cls(processes=processes, files=RunFiles(**{k: v for k, v in files.items() if k in known}),
                   layout=Layout.from_json(layout) if layout else None, api=ApiEndpoint(**api) if api else None,
                   **data)

    # -- persistence -------------------------------------------------------
    @property
    def path(self) -> Path:
        return STATE_DIR / f"{self.run_id}.json"

    def save(self) -> None:
        """Write the state. Several processes write it (the CLI, the run's
        supervisor), so under a lock the resource lists on disk are merged
        in first: no writer can drop what another one recorded."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / f"{self.run_id}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                try:
                    self._merge(RunState.load(self.path))
                except (OSError, ValueError, TypeError):
                    pass
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                json.dump(self.to_json(), fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def _merge(self, disk: "RunState") -> None:
        for kind in ("netns", "bridges", "root_ifaces", "containers"):
            mine = getattr(self, kind)
            mine.extend(x for x in getattr(disk, kind) if x not in mine)
        known = {(p.pid, p.starttime) for p in self.processes}
        extra = [p for p in disk.processes if (p.pid, p.starttime) not in known]
        self.processes = sorted(self.processes + extra, key=lambda p: p.starttime)

    def reload(self) -> None:
        """Pick up what other writers recorded."""
        if self.path.exists():
            self._merge(RunState.load(self.path))

    @classmethod
    def load(cls, path: Path) -> "RunState":
        return cls.from_json(json.loads(Path(path).read_text()))

    def forget(self) -> None:
        for p in (self.path, self.path.with_suffix(".tmp"), self.path.with_suffix(".lock")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    # -- recording (always before creating) -------------------------------
    def add(self, kind: str, name: str) -> None:
        items = getattr(self, kind)
        if name not in items:
            items.append(name)
            self.save()

    def add_process(self, record: ProcessRecord) -> None:
        self.processes.append(record)
        self.save()

    def process(self, name: str) -> ProcessRecord | None:
        for rec in reversed(self.processes):
            if rec.name == name:
                return rec
        return None

    @property
    def logs(self) -> Path:
        return Path(self.log_dir)

    @property
    def nodes(self) -> dict[str, NodeLayout]:
        """The run's hosts by name ({} before the network is deployed)."""
        return self.layout.nodes if self.layout is not None else {}

    def netns_of(self, node: str) -> str:
        """The network namespace of *node* in this run."""
        info = self.layout.nodes.get(node) if self.layout is not None else None
        return info.netns if info is not None else name_prefix(self.scope) + node


def new_run(topology: str, profile: str | None, scope: str | None = "") -> RunState:
    """Record a new run. *scope*: "" (the default run), one of SCOPES, or
    None for the first free one. Choosing and recording happen under one
    lock, so two ``up`` calls at the same moment never get the same scope."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    # The lock is on the state directory itself: no lock file outlives the runs.
    fd = os.open(STATE_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        taken = {r.scope: r for r in all_runs()}
        if scope is None:
            scope = next((s for s in ("",) + tuple(SCOPES) if s not in taken), None)
            if scope is None:
                raise TunnelwallError(f"all {len(SCOPES) + 1} run scopes are in use")
        elif scope and (len(scope) != 1 or scope not in SCOPES):
            raise TunnelwallError(f"scope '{scope}': one of {SCOPES} (or none for the default run)")
        elif scope in taken:
            other = taken[scope]
            raise TunnelwallError(f"a run is already up in {'scope ' + scope if scope else 'the default scope'} "
                                  f"({other.run_id}, topology {other.topology}); run 'tunnelwall "
                                  f"{'--run ' + other.run_id + ' ' if scope else ''}down' first, or "
                                  f"'tunnelwall up --scope auto' for another one beside it")
        run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        log_dir = LOG_ROOT / run_id
        log_dir.mkdir(parents=True, exist_ok=True)
        state = RunState(run_id=run_id, scope=scope, topology=topology, profile=profile, log_dir=str(log_dir))
        state.save()
    finally:
        os.close(fd)
    return state


def all_runs() -> list[RunState]:
    runs = []
    if STATE_DIR.is_dir():
        for p in sorted(STATE_DIR.glob("*.json")):
            try:
                runs.append(RunState.load(p))
            except (OSError, ValueError, TypeError):
                continue  # a state file we cannot read is reported by cleanup
    return runs


def active_run(which: str | None = None) -> RunState | None:
    """The run a command acts on. *which* (or $TUNNELWALL_RUN, which the
    CLI's --run sets): a run id, or a scope ("default" or one character).
    Without it: the only run, or the default-scope run when there are
    several; None when no run is up."""
    which = which if which is not None else os.environ.get("TUNNELWALL_RUN") or None
    runs = all_runs()
    if which is not None:
        for r in runs:
            if which in (r.run_id, r.scope) or (which == "default" and r.scope == ""):
                return r
        raise TunnelwallError(f"no run '{which}' is up (up: {', '.join(_describe(r) for r in runs) or 'none'})")
    if len(runs) <= 1:
        return runs[0] if runs else None
    default = [r for r in runs if r.scope == ""]
    if default:
        return default[0]
    raise TunnelwallError(f"several runs are up ({', '.join(_describe(r) for r in runs)}): choose one with --run")


def _describe(r: RunState) -> str:
    return f"{r.run_id} [scope {r.scope or 'default'}, {Path(r.topology).stem}]"
