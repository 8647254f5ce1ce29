"""What the benchmarks read from /proc: a process's memory and CPU, and
which processes a run's work lands on (the userspace switch and the run's
daemons). One reader, shared by classify.py, memory.py, classroom.py and
connections.py; the machine's free memory is tunnelwall.base.procs's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def status_mb(field: str, pid: int | str = "self") -> float:
    """A /proc/PID/status memory field (RssAnon, VmRSS, VmHWM, ...) in MB;
    0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def run_processes() -> dict[str, list[int]]:
    """ovs-vswitchd and the live daemons of the active run, by name."""
    from tunnelwall.base import procs
    from tunnelwall.base.runstate import active_run
    out = {"ovs-vswitchd": [int(p) for p in subprocess.run(["pidof", "ovs-vswitchd"], capture_output=True,
                                                             text=True).stdout.split()]}
    state = active_run()
    for rec in state.processes if state else []:
        if procs.alive(rec):
            out.setdefault(rec.name, []).append(rec.pid)
    return out


def cpu_of(processes: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each name's processes together."""
    return {name: sum(cpu_seconds(p) for p in pids) for name, pids in processes.items()}
