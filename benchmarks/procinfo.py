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


# The userspace switch's own counters (``ovs-appctl dpif-netdev/pmd-stats-show``),
# summed over its threads. Counts, not timings: on a shared virtual machine
# whose speed swings from one minute to the next, how many times the switch
# looked a packet up says where a censored connection's cost goes better
# than CPU seconds do.
DATAPATH_COUNTERS = {"packets received": "received", "packet recirculations": "recirculations",
                     "emc hits": "emc_hits", "smc hits": "smc_hits", "megaflow hits": "megaflow_hits",
                     "miss with success upcall": "upcalls", "miss with failed upcall": "failed_upcalls"}


def parse_pmd_stats(text: str) -> dict[str, int]:
    """The counters of ``pmd-stats-show`` output, summed over its threads
    (averages and cycle shares are left out: they do not add up)."""
    totals = dict.fromkeys(DATAPATH_COUNTERS.values(), 0)
    for line in text.splitlines():
        label, sep, value = line.strip().partition(":")
        name, fields = DATAPATH_COUNTERS.get(label), value.split()
        if sep and name and fields and fields[0].isdigit():
            totals[name] += int(fields[0])
    return totals


def datapath_counts() -> dict[str, int]:
    """The switch's counters now (all zero if it has no userspace datapath)."""
    out = subprocess.run(["ovs-appctl", "dpif-netdev/pmd-stats-show"], capture_output=True, text=True)
    return parse_pmd_stats(out.stdout if out.returncode == 0 else "")


def datapath_per(before: dict[str, int], after: dict[str, int], count: int) -> dict[str, float]:
    """What the switch did per connection (or any unit) between two readings:
    packets received, recirculations, and lookups (passes: the two together)."""
    delta = {k: after[k] - before[k] for k in after}
    delta["passes"] = delta["received"] + delta["recirculations"]
    return {k: round(v / count, 2) for k, v in delta.items()}
