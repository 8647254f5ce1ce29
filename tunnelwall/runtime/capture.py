"""Packet captures on a node's interface, written as pcapng.

``tunnelwall capture NODE[:IFACE]`` runs this module in the node's network
namespace (``python -m tunnelwall.runtime.capture``): an AF_PACKET socket on
the interface, every frame in both directions, into a pcapng file that
Wireshark opens and ``tunnelwall classify`` reads. Written here rather than
with dumpcap (not installed by default) or tcpdump (Debian 12's writes
classic pcap only); frames are flushed as they come, so a capture ended by
Ctrl-C or SIGTERM is complete up to its last frame.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time

from tunnelwall.base.rawsock import packet_socket
from tunnelwall.middlebox.pcap import PcapngWriter



def capture(iface: str, out: str, count: int = 0, seconds: float = 0.0) -> int:
    sock = packet_socket(iface, ignore_outgoing=False)       # both directions
    sock.settimeout(0.5)
    stop = {"now": False}

    def finish(_sig, _frame):
        stop["now"] = True
    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    deadline = time.monotonic() + seconds if seconds else None
    n = 0
    with PcapngWriter(out, name=iface) as writer:
        print(f"capturing on {iface} into {out}", flush=True)
        while not stop["now"] and (not count or n < count) and (deadline is None or time.monotonic() < deadline):
            try:
                frame = sock.recv(262144)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            writer.write(time.time(), frame)
            n += 1
    print(f"{n} frames", flush=True)
    return n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0.0)
    args = ap.parse_args()
    try:
        capture(args.iface, args.out, args.count, args.seconds)
    except OSError as err:
        print(f"capture: {args.iface}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
