#!/usr/bin/env python3
"""Offline classification speed: packets/s of ``classify`` on a generated
capture (default 1,000,000 packets in 20,000 flows of mixed protocols).

    .venv/bin/python benchmarks/classify.py [--packets N] [--flows F] [--profile gfw]

Goal (issue 3): >= 500k packets/s on one core. For scale: CensorLab's
published PCAP mode does 42-67k packets/s with a no-op program.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tunnelwall.middlebox import profiles  # noqa: E402
from tunnelwall.middlebox.offline import classify_pcap  # noqa: E402
from tunnelwall.middlebox.pcap import Writer  # noqa: E402


def _frame(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, tcp: bool, flags: int = 0x18,
           seq: int = 1, ack: int = 1) -> bytes:
    if tcp:
        l4 = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0) + payload
    else:
        l4 = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, 6 if tcp else 17, 0, src, dst)
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip + l4


def generate(path: Path, packets: int, flows: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    per_flow = max(2, packets // flows)
    kinds = ["tls", "fet", "wireguard", "openvpn", "dns", "http", "bulk-udp"]
    written = 0
    ts = 1_700_000_000.0
    random_block = rng.randbytes(4096)
    with Writer(path) as w:
        for i in range(flows):
            kind = kinds[i % len(kinds)]
            client = socket.inet_aton(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}")
            server = socket.inet_aton(f"198.18.{(i >> 8) & 255}.{i & 255 or 1}")
            cport, sport = 20000 + i % 40000, {"tls": 443, "http": 80, "dns": 53, "wireguard": 51820,
                                               "openvpn": 1194}.get(kind, 8000 + i % 1000)
            tcp = kind in ("tls", "fet", "http")
            first = {"tls": b"\x16\x03\x01\x00\xc8\x01" + random_block[:200],
                     "fet": random_block[rng.randrange(3000):][:300],
                     "http": b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
                     "wireguard": b"\x01\x00\x00\x00" + random_block[:144],
                     "openvpn": bytes([7 << 3]) + random_block[:40],
                     "dns": struct.pack(">6H", i & 0xFFFF, 0x100, 1, 0, 0, 0) + b"\x07example\x03org\x00\x00\x01\x00\x01",
                     "bulk-udp": random_block[:1000]}[kind]
            # TCP flows open with a handshake and number their bytes, as the
            # censor's TCP model expects (a flow without one is not inspected).
            cseq, sseq = 1000 + i, 5000 + i
            frames = []
            if tcp:
                frames += [_frame(client, server, cport, sport, b"", True, 0x02, cseq, 0),
                           _frame(server, client, sport, cport, b"", True, 0x12, sseq, cseq + 1),
                           _frame(client, server, cport, sport, b"", True, 0x10, cseq + 1, sseq + 1)]
                cseq, sseq = cseq + 1, sseq + 1
            frames.append(_frame(client, server, cport, sport, first, tcp, seq=cseq, ack=sseq))
            cseq += len(first)
            # Later packets: every one different (real ciphertext never repeats),
            # two server packets of ~1200 bytes for each client packet of ~600.
            for n in range(1, per_flow - len(frames) + 1):
                at = rng.randrange(2800)
                if n % 3:
                    data = random_block[at:at + 1200]
                    frames.append(_frame(server, client, sport, cport, data, tcp, seq=sseq, ack=cseq))
                    sseq += len(data)
                else:
                    data = random_block[at:at + 600]
                    frames.append(_frame(client, server, cport, sport, data, tcp, seq=cseq, ack=sseq))
                    cseq += len(data)
            for f in frames:
                w.write(ts, f)
                ts += 0.00001
            written += len(frames)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--flows", type=int, default=20_000)
    ap.add_argument("--profile", default="gfw-2022")
    ap.add_argument("--keep", help="write the capture here and keep it")
    args = ap.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "bench.pcap"
    t0 = time.perf_counter()
    n = generate(path, args.packets, args.flows)
    gen = time.perf_counter() - t0
    profile = profiles.load(args.profile)
    t0 = time.perf_counter()
    result = classify_pcap(path, profile)
    elapsed = time.perf_counter() - t0
    blocked = sum(1 for r in result.flows if r.flow.verdict and r.flow.verdict.blocks)
    print(f"capture: {n} packets, {args.flows} flows, {path.stat().st_size / 1e6:.0f} MB (generated in {gen:.1f}s)")
    print(f"classify --profile {args.profile}: {elapsed:.2f}s = {n / elapsed:,.0f} packets/s on one core "
          f"({len(result.flows)} flows, {blocked} blocked)")
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
