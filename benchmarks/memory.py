#!/usr/bin/env python3
"""Memory of the censor against the number of flows: flat, because the flow
table is bounded (profile ``flows.max``, 65,536 by default) and offline
reports are streamed.

    .venv/bin/python benchmarks/memory.py [--flows 100000,1000000]

For each count, in a fresh process each (peak RSS is per process):

* live: the middlebox's engine fed TCP connections (SYN, SYN/ACK, ACK, a
  request) as the daemon feeds it, one new flow after another;
* classify: ``classify --format json`` over a pcap of the same traffic,
  reports streamed to /dev/null.

Prints peak RSS and private (anonymous) memory per case, and the ratio
largest/smallest count (goal: within 1.1, i.e. flat to +-10 %). ``classify``
maps the capture into memory and lets go of every 64 MB it has read, so its
peak RSS also counts up to that window of the file's pages (they belong to
the page cache); its private memory is what the flow table costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import status_mb  # noqa: E402


def frames(flows: int):
    """Four frames per TCP connection, distinct addresses per flow (built
    as the censor builds the segments it injects)."""
    from tunnelwall.middlebox.inject import Endpoints, tcp_segment
    client_mac, server_mac = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
    request = b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"
    for i in range(flows):
        c = bytes((10, (i >> 16) & 255, (i >> 8) & 255, i & 255))
        s = bytes((198, 18, (i >> 8) & 255, 1 + (i & 127)))
        cport, isn, sisn = 20000 + (i % 40000), (i * 7919) & 0xFFFFFFFF, (i * 104729) & 0xFFFFFFFF
        for src, dst, sp, dp, seq, ack, flags, payload in (
                (c, s, cport, 80, isn, 0, 0x02, b""), (s, c, 80, cport, sisn, isn + 1, 0x12, b""),
                (c, s, cport, 80, isn + 1, sisn + 1, 0x10, b""), (c, s, cport, 80, isn + 1, sisn + 1, 0x18, request)):
            yield tcp_segment(Endpoints(server_mac, client_mac, src, dst, sp, dp), seq, ack, flags, payload, window=65535)


def child(kind: str, flows: int, pcap: str | None) -> None:
    import resource
    peak = [0.0]

    def sample(_report=None, _count=[0]):          # noqa: B006 - a counter across calls
        _count[0] += 1
        if _count[0] % 5000 == 0:
            peak[0] = max(peak[0], status_mb("RssAnon"))
    from tunnelwall.middlebox import profiles
    profile = profiles.load("gfw")
    if kind == "live":
        from tunnelwall.middlebox.engine import Engine
        engine = Engine(profile)
        t = 0.0
        for frame in frames(flows):
            t += 1e-5
            engine.feed(frame, t)
            engine.drain()
            sample()
        live = engine.live
    else:
        from tunnelwall.middlebox.offline import classify_pcap
        result = classify_pcap(pcap, profile, on_flow=lambda report: (report.as_dict(), sample()))
        live = result.stats["flows_live_at_end"]
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "anon_mb": max(peak[0], status_mb("RssAnon")), "live": live}))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", default="100000,1000000")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2] if args.child[2] != "-" else None)
        return 0
    from tunnelwall.middlebox.pcap import Writer
    counts = [int(c) for c in args.flows.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            pcap = Path(tmp) / f"{n}.pcap"
            with Writer(pcap) as w:
                for i, frame in enumerate(frames(n)):
                    w.write(1_700_000_000 + i * 1e-5, frame)
            for kind in ("live", "classify"):
                out = subprocess.run([sys.executable, __file__, "--child", kind, str(n),
                                      str(pcap) if kind == "classify" else "-"],
                                     capture_output=True, text=True, check=True).stdout
                rows.append((kind, n, json.loads(out)))
            pcap.unlink()
    print(f"{'case':<10} {'flows':>9} {'peak RSS MB':>12} {'peak private MB':>16} {'flows held at end':>18}")
    for kind, n, r in rows:
        print(f"{kind:<10} {n:>9} {r['peak_rss_mb']:>12.1f} {r['anon_mb']:>16.1f} {r['live']:>18}")
    for kind in ("live", "classify"):
        rss = [r["peak_rss_mb"] for k, _n, r in rows if k == kind]
        anon = [r["anon_mb"] for k, _n, r in rows if k == kind]
        print(f"{kind}: at {counts[-1]:,} flows / at {counts[0]:,} flows: peak RSS x{rss[-1] / rss[0]:.2f}, "
              f"private memory x{anon[-1] / anon[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
