"""Removing what a run created, and only that.

Sources of truth, in order:

1. run-state files in /run/tunnelwall, written before each resource was
   created (processes with PID + start time, namespaces, bridges, veths);
2. the label on our OVS bridges (``external_ids:tunnelwall-run``), which
   finds bridges whose state file was lost.

Nothing is removed by name pattern alone: a namespace called ``tw-x`` that
no state file lists is left alone, and so is any process not started by us.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tunnelwall import topologies
from tunnelwall.base import procs
from tunnelwall.runtime import accounts
from tunnelwall.base.runstate import BRIDGE_LABEL, STATE_DIR, RunState, all_runs
from tunnelwall.topologies.datapath import DPCTL_NAME
# The machine's namespaces and interfaces (the integration tests' census uses them too).
from tunnelwall.topologies.mininet_backend import existing_ifaces, existing_netns  # noqa: F401


def _quiet(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


ZONE_BASE, ZONES = 0x7000, 0x1000       # the runs' conntrack zones: 28672 .. 32767 (censor.conntrack_zone)


def flush_zone(zone: int, kind: str = "user") -> bool:
    """Forget every connection the switch's tracker holds in *zone* (a run's
    allowed flows, flows.offload: conntrack) in the datapath of *kind*
    ("kernel" or "user"); False if there was no such datapath."""
    # Named, since a machine can have both datapaths; Open vSwitch 3.1 refuses
    # a name in this one command ("field netdev@ovs-netdev missing value"),
    # and without one dpctl takes the only datapath there is.
    return any(_quiet(["ovs-appctl", "--timeout=10", "dpctl/flush-conntrack", *named, f"zone={zone}"]).returncode == 0
               for named in ([DPCTL_NAME[kind]], []))


def datapaths() -> list[str]:
    """The kinds of datapath Open vSwitch has now ("kernel", "user")."""
    listed = _quiet(["ovs-appctl", "--timeout=10", "dpctl/dump-dps"]).stdout.split()
    return [kind for kind, name in DPCTL_NAME.items() if name in listed]


def labelled_bridges() -> dict[str, str]:
    """Our bridges (by label) -> run id."""
    res = _quiet(["ovs-vsctl", "--timeout=5", "--format=csv", "--data=bare", "--no-headings",
                  "--columns=name,external_ids", "list", "Bridge"])
    found = {}
    if res.returncode != 0:
        return found
    for line in res.stdout.splitlines():
        name, _, ext = line.partition(",")
        for item in ext.strip('"').split(" "):
            key, _, value = item.partition("=")
            if key == BRIDGE_LABEL:
                found[name] = value
    return found


def teardown(state: RunState, log=print) -> list[str]:
    """Remove everything *state* lists; returns what was removed."""
    removed = []
    # The supervisor first, so that it restarts nothing we stop; then read
    # the state again for whatever it recorded last.
    for rec in state.processes:
        if rec.name == "supervisor" and procs.stop(rec):
            removed.append(f"process supervisor (pid {rec.pid})")
    state.status = "stopping"
    try:
        state.reload()
        state.save()
    except (OSError, ValueError, TypeError):
        pass
    # Daemons (newest first), so nothing holds the namespaces.
    for rec in reversed(state.processes):
        if procs.stop(rec):
            removed.append(f"process {rec.name} (pid {rec.pid})")
    # Students' accounts (exercise start): their processes end with them.
    removed += accounts.remove(state.run_id, keep_in=Path(state.log_dir) / "answers" if state.log_dir else None)
    if state.ct_zone and flush_zone(state.ct_zone, state.datapath):
        # The connections the switch remembered as allowed (flows.offload:
        # conntrack), while the datapath is still there.
        removed.append(f"conntrack zone {state.ct_zone}")
    # Containers, bridges, veths and namespaces: the backend that built them.
    removed += topologies.backend_for(state).destroy()
    sock = state.files.socket
    if sock and os.path.exists(sock):
        os.unlink(sock)
        removed.append(f"socket {sock}")
    state.forget()
    return removed


def cleanup_all(log=print) -> list[str]:
    """Tear down every run on this machine, plus labelled bridges left over."""
    removed = []
    known_runs = set()
    for state in all_runs():
        known_runs.add(state.run_id)
        removed += teardown(state, log)
    removed += accounts.remove()       # labelled student accounts whose run is gone
    from tunnelwall.topologies import dockerd
    removed += dockerd.stop()     # our labelled containers, then our dockerd
    for kind in datapaths():
        dump = _quiet(["ovs-appctl", "--timeout=10", "dpctl/dump-conntrack", DPCTL_NAME[kind]]).stdout
        for zone in sorted({int(z) for z in re.findall(r"\bzone=(\d+)", dump)}):
            if ZONE_BASE <= zone < ZONE_BASE + ZONES:       # runs' zones only
                flush_zone(zone, kind)
                removed.append(f"conntrack zone {zone} (left over)")
    for bridge, run_id in labelled_bridges().items():
        _quiet(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", bridge])
        removed.append(f"bridge {bridge} (labelled run {run_id})")
    if STATE_DIR.is_dir():
        # The state directory is ours alone: half-written state files and the
        # sockets of runs whose state is gone can go.
        for stray in list(STATE_DIR.glob("*.tmp")) + list(STATE_DIR.glob("*.sock")) + list(STATE_DIR.glob("*.lock")) \
                + list(procs.CONTAINER_DIR.glob("*")):
            if stray.stem not in known_runs or stray.suffix == ".tmp" or stray.parent == procs.CONTAINER_DIR:
                stray.unlink(missing_ok=True)
                removed.append(f"stale file {stray}")
    return removed
