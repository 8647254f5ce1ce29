"""Daemons started by tunnelwall: spawned (optionally inside a node's
namespace), recorded by PID and start time, and ended only by that record.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError
from tunnelwall.base.runstate import STATE_DIR, ProcessRecord, RunState


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on, or None if PID is gone. The
    command name (field 2) may contain spaces; fields restart after ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def mem_available_mb() -> float:
    """The machine's available memory (MemAvailable), in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def starttime(pid: int) -> int | None:
    """Start time of PID in clock ticks since boot, or None if it is gone."""
    rest = _stat(pid)
    if rest is None or rest[0] == "Z":
        return None  # a zombie is as good as gone
    return int(rest[19])


def alive(rec: ProcessRecord) -> bool:
    return starttime(rec.pid) == rec.starttime


CONTAINER_DIR = STATE_DIR / "containers"   # <netns name> -> PID of a container node's init


def container_pid(netns: str) -> str | None:
    try:
        return (CONTAINER_DIR / netns).read_text().strip() or None
    except OSError:
        return None


def in_netns(netns: str | None, argv: list[str], host_binaries: bool = False, cwd: str | None = None) -> list[str]:
    """The command line that runs *argv* on a node.

    Namespace hosts: ``ip netns exec``. Container nodes: ``nsenter`` into the
    container's mount, UTS, IPC and network namespaces, so the container's
    own programs and files are used (without forking: the PID is the
    program's). *host_binaries*: run the host's programs in the node's
    network namespace even for a container (tunnelwall's own services).
    *cwd*: entering a mount namespace resets the working directory
    (setns(2)), so a container command gets it back explicitly."""
    if not netns:
        return list(argv)
    pid = None if host_binaries else container_pid(netns)
    if pid:
        return ["nsenter", "-t", pid, "-m", "-u", "-i", "-n", *([f"--wd={cwd}"] if cwd else []), "--", *argv]
    return ["ip", "netns", "exec", netns, *argv]


def spawn(state: RunState, name: str, argv: list[str], netns: str | None = None,
          env: dict | None = None, cwd: str | None = None, log: Path | None = None,
          host_binaries: bool = False) -> ProcessRecord:
    """Start a daemon, record it in the run state, and return its record.

    Output goes to ``<log_dir>/<name>.log`` (appended, so a restart keeps the
    previous run's lines). ``ip netns exec`` execs in place, so the PID we
    record is the daemon's own.
    """
    if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
        raise EnvironmentProblem(f"{name}: program '{argv[0]}' not found (run scripts/setup.sh)")
    log = log or state.logs / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    full = in_netns(netns, argv, host_binaries, cwd)
    with open(log, "ab", buffering=0) as out:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    st = None
    for _ in range(50):
        st = starttime(proc.pid)
        if st is not None:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.002)
    rec = ProcessRecord(name=name, pid=proc.pid, starttime=st or 0, netns=netns, log=str(log), argv=full)
    state.add_process(rec)
    # Keep the Popen object referenced so Python does not warn, and so that
    # exit codes are collected while we live (no zombies).
    _CHILDREN[proc.pid] = proc
    return rec


_CHILDREN: dict[int, subprocess.Popen] = {}


def respawn(state: RunState, rec: ProcessRecord) -> ProcessRecord:
    """Start a recorded daemon again, same command, same log (appended)."""
    log = Path(rec.log) if rec.log else state.logs / f"{rec.name}.log"
    with open(log, "ab", buffering=0) as out:
        proc = subprocess.Popen(rec.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    st = None
    for _ in range(50):
        st = starttime(proc.pid)
        if st is not None or proc.poll() is not None:
            break
        time.sleep(0.002)
    new = ProcessRecord(name=rec.name, pid=proc.pid, starttime=st or 0, netns=rec.netns, log=str(log), argv=rec.argv)
    _CHILDREN[proc.pid] = proc
    state.add_process(new)
    return new


def exited(rec: ProcessRecord) -> int | None:
    """Exit code if the process has ended (None while it runs)."""
    proc = _CHILDREN.get(rec.pid)
    if proc is not None:
        return proc.poll()
    return None if alive(rec) else -1


def stop(rec: ProcessRecord, timeout: float = 3.0) -> bool:
    """SIGTERM, then SIGKILL after *timeout*; only if it is still the process we started.

    A daemon we spawned leads its own process group (``spawn`` starts a new
    session), so the signals go to that group while the leader is alive and
    verified by its start time: children it forked (SoftEther's execsvc
    forks its worker and the worker outlives a killed parent; ocserv forks
    sec-mod) end with it. A group outlives its leader only while members
    remain, and its ID cannot be reused as a PID meanwhile, so the SIGKILL
    that follows reaches only what we started."""
    if not alive(rec):
        _reap(rec)
        return False
    try:
        group = os.getpgid(rec.pid) == rec.pid
    except ProcessLookupError:
        group = False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            if group:
                os.killpg(rec.pid, sig)
            else:
                os.kill(rec.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(rec)
            if not alive(rec) and not (group and _live_members(rec.pid)):
                return True
            time.sleep(0.02)
    _reap(rec)
    return True


def _live_members(pgid: int) -> list[int]:
    """Processes of group *pgid* that are not zombies. A zombie keeps its
    group in existence until its parent reaps it (a daemon whose launcher
    exited is reaped by PID 1, whenever that gets round to it), yet it runs
    nothing: only live members keep stop() waiting."""
    live = []
    for entry in os.scandir("/proc"):
        rest = _stat(entry.name) if entry.name.isdigit() else None
        if rest is not None and int(rest[2]) == pgid and rest[0] != "Z":
            live.append(int(entry.name))
    return live


def _reap(rec: ProcessRecord) -> None:
    proc = _CHILDREN.get(rec.pid)
    if proc is not None and proc.poll() is not None:
        _CHILDREN.pop(rec.pid, None)


def tail(path: str | Path | None, lines: int = 15) -> str:
    if not path:
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(argv: list[str], netns: str | None = None, timeout: float = 30, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a short command (in a namespace) and return its result; a failure
    raises a one-line TunnelwallError with the command's own message."""
    full = in_netns(netns, argv)
    try:
        res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise TunnelwallError(f"command timed out after {timeout:.0f}s: {' '.join(full)}") from None
    except FileNotFoundError:
        raise EnvironmentProblem(f"program '{full[0]}' not found (run scripts/setup.sh)") from None
    if check and res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise TunnelwallError(f"'{' '.join(full)}' failed: {msg[-1] if msg else 'exit ' + str(res.returncode)}")
    return res


def wait_started(rec: ProcessRecord | None, ready, timeout: float, what: str):
    """Poll *ready* until it returns something true, and return it. Fails
    with the daemon's log as soon as *rec*'s process exits, or after
    *timeout* seconds: spawning a daemon and waiting for it is one pattern
    (the controller's ports, the censor's readiness, a service's port)."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if rec is not None and exited(rec) is not None:
            raise TunnelwallError(f"{rec.name} exited during start-up ({what}); its log ({rec.log}):\n"
                                  f"{tail(rec.log)}")
        if time.monotonic() >= deadline:
            raise TunnelwallError(f"{what}: not after {timeout:.0f}s"
                                  + (f"; log {rec.log}:\n{tail(rec.log)}" if rec is not None else ""))
        time.sleep(0.05)


@contextmanager
def signals_as_interrupts():
    """SIGTERM and SIGHUP behave like Ctrl-C inside the block, so the code
    that handles KeyboardInterrupt (tearing a network down) runs for them too."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield                  # only the main thread can take signals
        return
    old = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
