"""``tunnelwall probe HOST:PORT``: probe a server the way the censor's prober does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tunnelwall.cli.main import _print_table, verb
from tunnelwall.base import procs
from tunnelwall.base.errors import TunnelwallError


def cmd_probe(args) -> int:
    from tunnelwall.base.runstate import active_run
    state = active_run()
    if state is None:
        raise TunnelwallError("no run is up (tunnelwall up TOPO)")
    node = args.source or next(iter(state.layout.by_role("prober")), None)
    if node is None or node not in state.nodes:
        raise TunnelwallError("give --from NODE: the topology has no prober node")
    if ":" not in args.target:
        raise TunnelwallError(f"probe '{args.target}': write HOST:PORT, e.g. 198.18.0.20:8388")
    replay = args.replay
    if args.replay_random:
        replay = os.urandom(args.replay_random).hex()
    argv = [sys.executable, "-m", "tunnelwall.middlebox.prober", "--once", args.target, "--replay", replay,
            "--count", str(args.count), "--timeout", str(args.timeout)]
    # The prober is tunnelwall's own program: the host's, in the node's namespace.
    res = subprocess.run(procs.in_netns(state.netns_of(node), argv, host_binaries=True), capture_output=True, text=True,
                         timeout=args.timeout + 60)
    if res.returncode != 0:
        raise TunnelwallError(f"prober failed: {res.stderr.strip().splitlines()[-1:] or res.returncode}")
    result = json.loads(res.stdout)
    if args.format == "json":
        print(json.dumps(result, indent=1))
        return 0
    _print_table(result["reactions"], ["probe", "sent", "kind", "received", "seconds"])
    print(f"\n{result['server']}:{result['port']}: {result['fingerprint']}"
          f"{' (confirmed: a censor would block it)' if result['confirmed'] else ''}")
    return 0


@verb
def add_probe(sub) -> None:
    p = sub.add_parser("probe", help="actively probe a server like the GFW does; print its reactions")
    p.add_argument("target", metavar="HOST:PORT", help="the server to probe, e.g. 198.18.0.20:8388")
    p.add_argument("--from", dest="source", metavar="NODE", help="node to probe from (default: the prober)")
    p.add_argument("--replay", default="", metavar="HEX", help="the client's first packet, replayed (hex)")
    p.add_argument("--replay-random", type=int, metavar="N", help="replay N random bytes instead")
    p.add_argument("--count", type=int, default=16, help="probes sent")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for each reaction")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    p.set_defaults(func=cmd_probe)
