#!/usr/bin/env python3
"""Record real tools' traffic for ``classify.py``'s ``tools`` capture.

    .venv/bin/python benchmarks/record_tools.py [--tools wireguard,openvpn-udp,...] [--bytes 20000]

Brings up ``isp`` with the ``log-only`` censor (it sees and logs, blocks
nothing), captures everything on c1's interface while each tool connects
and moves ``--bytes`` through its tunnel, and writes the capture to
``$TUNNELWALL_BENCH_CACHE/tools.pcapng`` (default /var/tmp/tunnelwall-bench).
Needs root and the tools (scripts/setup.sh installs them). The testbed is
torn down afterwards, whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classify import RECORDING  # noqa: E402

TOOLS = ("wireguard", "openvpn-udp", "openvpn-tcp", "shadowsocks", "obfs4", "trojan", "v2ray-vmess", "kcptun",
         "stunnel-https", "ssh", "https", "ikev2", "openconnect", "shadowsocks-obfs-tls")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--bytes", type=int, default=20_000)
    ap.add_argument("--out", default=str(RECORDING))
    args = ap.parse_args()

    from tunnelwall.base import procs
    from tunnelwall.harness.runner import RunOptions, run_tool
    from tunnelwall.harness.spec import load
    from tunnelwall.runtime.cleanup import teardown
    from tunnelwall.runtime.network import UpOptions, up

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.pcapng")
    state = up(UpOptions(topology="isp", profile="log-only", scope=None))
    try:
        iface = next(iter(state.nodes["c1"].interfaces))
        rec = procs.spawn(state, "record", [sys.executable, "-m", "tunnelwall.runtime.capture", "--iface", iface,
                                            "--out", str(partial.resolve())], netns=state.netns_of("c1"),
                          host_binaries=True)
        log = Path(rec.log)
        deadline = time.monotonic() + 10
        while "capturing on" not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                sys.exit(f"the capture did not start: {log}")
            time.sleep(0.05)
        for name in args.tools.split(","):
            r = run_tool(state, load(name), RunOptions(bytes=args.bytes))
            print(f"{name}: {r.outcome}, {r.bytes_through:,} bytes through", flush=True)
        procs.stop(rec)
    finally:
        teardown(state)
    partial.replace(out)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
