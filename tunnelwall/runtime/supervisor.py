"""Keeps a run's censor alive: ``python -m tunnelwall.runtime.supervisor --run ID``.

Started by ``tunnelwall up`` for censored runs. Every ``INTERVAL`` it checks
the controller, the middlebox and the prober (by PID and start time) and
starts a dead one again with the same command; the restart is written to
the run state (so ``down`` and ``cleanup`` find the new process) and to the
supervisor's log. While a component is down the border does what the
profile's ``fail`` says: the controller fails new flows open or closed
while the middlebox is away, and Open vSwitch's fail mode (standalone or
secure) covers the controller's absence. It exits when the run is stopping.

The watchdog: a middlebox can be alive and useless, its loop stuck in one
packet. Its loop beats a heartbeat (:mod:`tunnelwall.base.heartbeat`) at
least every 0.1 s; when no beat came for ``--watchdog-ms`` (default 500,
or ``$TUNNELWALL_WATCHDOG_MS``; 0 turns it off), the supervisor tells the
controller (which at once applies the profile's overload policy, open or
closed, and counts and logs the stall), ends the stuck process and starts
it again; the new one gets the last one's blocks and verdicts back from
the controller.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tunnelwall.base import heartbeat, procs
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.runstate import STATE_DIR, ProcessRecord, RunState

WATCHED = ("controller", "middlebox", "prober")
INTERVAL = 0.1
WATCHDOG_MS = 500.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--watchdog-ms", type=float, default=float(os.environ.get("TUNNELWALL_WATCHDOG_MS", WATCHDOG_MS)),
                    help="restart a middlebox whose loop made no progress for this long (0: never)")
    args = ap.parse_args()
    path = STATE_DIR / f"{args.run}.json"
    restarts = 0
    print(f"supervisor: watching {', '.join(WATCHED)} of run {args.run}; watchdog {args.watchdog_ms:g} ms", flush=True)
    while True:
        try:
            state = RunState.load(path)
        except (OSError, ValueError, TypeError):
            return 0                       # the run is gone
        if state.status != "up":
            return 0
        beat = state.logs / heartbeat.MIDDLEBOX
        for name in WATCHED:
            rec = state.process(name)
            if rec is None:
                continue
            if not procs.alive(rec):
                why = "died"
            elif name == "middlebox" and args.watchdog_ms and \
                    (stalled := heartbeat.stalled_for(beat) * 1000.0) > args.watchdog_ms:
                why = f"made no progress for {stalled:.0f} ms"
                stalled_middlebox(state, rec, stalled)
            else:
                continue
            if name == "middlebox":
                heartbeat.reset(beat)      # the new one beats once it is running
            new = procs.respawn(state, rec)
            restarts += 1
            print(f"supervisor: {name} (pid {rec.pid}) {why}; restarted as pid {new.pid} (restart {restarts})",
                  flush=True)
        time.sleep(INTERVAL)


def stalled_middlebox(state: RunState, rec: ProcessRecord, stalled_ms: float) -> None:
    """Tell the controller (the overload policy applies at once, the stall is
    counted and logged), then end the stuck process: SIGTERM, SIGKILL soon
    after (a stopped or stuck process may not take the first)."""
    from tunnelwall.runtime.api import Api
    try:
        Api(state).call("/api/watchdog", {"stalled_ms": stalled_ms, "pid": rec.pid}, timeout=2.0)
    except TunnelwallError as err:
        print(f"supervisor: could not tell the controller: {err}", flush=True)
    procs.stop(rec, timeout=0.1)


if __name__ == "__main__":
    sys.exit(main())
