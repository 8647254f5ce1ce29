"""``tunnelwall capture NODE[:IFACE] [-w FILE]``: record a node's traffic as pcapng."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tunnelwall.base import procs
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.cli.main import verb


def cmd_capture(args) -> int:
    from tunnelwall.base.runstate import active_run
    from tunnelwall.runtime.network import require_root
    require_root()
    state = active_run()
    if state is None:
        raise TunnelwallError("capture: no run is up (tunnelwall up TOPO)")
    node, _, iface = args.target.partition(":")
    if node not in state.nodes:
        raise TunnelwallError(f"capture: no node '{node}' in the running topology (nodes: {', '.join(state.nodes)})")
    ifaces = list(state.nodes[node].interfaces)
    iface = iface or ifaces[0]
    if iface not in ifaces:
        raise TunnelwallError(f"capture: node '{node}' has no interface '{iface}' (it has {', '.join(ifaces)})")
    out = Path(args.write) if args.write else \
        state.logs / "captures" / f"{node}-{iface}-{time.strftime('%Y%m%d-%H%M%S')}.pcapng"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tunnelwall.runtime.capture", "--iface", iface, "--out", str(out.resolve()),
            "--count", str(args.count), "--seconds", str(args.seconds)]
    print(str(out), flush=True)
    print(f"capture: {node}:{iface} -> {out} (Ctrl-C ends it)", file=sys.stderr)
    child = subprocess.Popen(procs.in_netns(state.netns_of(node), argv, host_binaries=True), stdout=sys.stderr)

    def stop(_sig, _frame):
        child.terminate()              # the capture flushes and closes its file on SIGTERM
    old = signal.signal(signal.SIGTERM, stop)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.terminate()
        code = child.wait()
    finally:
        signal.signal(signal.SIGTERM, old)
    return 0 if code in (0, -signal.SIGTERM) else code


@verb
def add_capture(sub) -> None:
    p = sub.add_parser("capture", help="record a node's traffic as pcapng (Wireshark and classify read it)")
    p.add_argument("target", metavar="NODE[:IFACE]", help="node and interface (default: its first), e.g. c1:eth0")
    p.add_argument("-w", "--write", metavar="FILE", help="output file (default: the run's log folder, captures/)")
    p.add_argument("-c", "--count", type=int, default=0, help="stop after this many frames")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this many seconds")
    p.set_defaults(func=cmd_capture)
