"""Keeps a run's censor alive: ``python -m tunnelwall.supervisor --run ID``.

Started by ``tunnelwall up`` for censored runs. Every few hundred
milliseconds it checks the controller and the middlebox (by PID and start
time) and starts a dead one again with the same command; the restart is
written to the run state (so ``down`` and ``cleanup`` find the new process)
and to the supervisor's log. While a component is down the border does what
the profile's ``fail`` says: the controller fails new flows open or closed
while the middlebox is away, and Open vSwitch's fail mode (standalone or
secure) covers the controller's absence. It exits when the run is stopping.
"""

from __future__ import annotations

import argparse
import sys
import time

from tunnelwall.base import procs
from tunnelwall.base.runstate import STATE_DIR, RunState

WATCHED = ("controller", "middlebox", "prober")
INTERVAL = 0.25


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    args = ap.parse_args()
    path = STATE_DIR / f"{args.run}.json"
    restarts = 0
    print(f"supervisor: watching {', '.join(WATCHED)} of run {args.run}", flush=True)
    while True:
        try:
            state = RunState.load(path)
        except (OSError, ValueError, TypeError):
            return 0                       # the run is gone
        if state.status != "up":
            return 0
        for name in WATCHED:
            rec = state.process(name)
            if rec is not None and not procs.alive(rec):
                new = procs.respawn(state, rec)
                restarts += 1
                print(f"supervisor: {name} (pid {rec.pid}) died; restarted as pid {new.pid} "
                      f"(restart {restarts})", flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    sys.exit(main())
