#!/usr/bin/env python3
"""Long fuzzing of the middlebox engine (outside the test command).

    .venv/bin/python benchmarks/fuzz.py [--inputs 1000000] [--seed 1]

Feeds the engine random and mutated frames: truncated IPv4/TCP/UDP headers,
bogus lengths and offsets, and payloads of every classifier's protocol
(OpenVPN, WireGuard, IKE, L2TP, PPTP, SSH, TLS ClientHello, QUIC Initial,
DNS, HTTP, random) with random bytes changed, cut or appended. Any exception
is a bug: the script prints the input that raised it and exits 1.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tunnelwall.middlebox import profiles  # noqa: E402
from tunnelwall.middlebox.engine import Engine  # noqa: E402
from tunnelwall.middlebox.inject import Endpoints, tcp_segment  # noqa: E402

MAC = b"\x02" * 6


def seeds(rng: random.Random) -> list[tuple[int, bytes]]:
    """(protocol number, payload) of each classifier's protocol."""
    hello = (b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03" + rng.randbytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
             + b"\x00\x15\x00\x00\x00\x11\x00\x0f\x00\x00\x0cfacebook.com")
    dns = struct.pack(">6H", 1, 0x100, 1, 0, 0, 0) + b"\x03www\x07example\x03org\x00\x00\x01\x00\x01"
    ike = rng.randbytes(8) + b"\x00" * 8 + bytes([33, 0x20, 34, 8]) + b"\x00" * 4 + struct.pack(">I", 88) + rng.randbytes(60)
    l2tp = b"\xc8\x02\x00\x14" + b"\x00" * 8 + struct.pack(">HHHH", 0x8008, 0, 0, 1)
    pptp = struct.pack(">HH", 156, 1) + b"\x1a\x2b\x3c\x4d" + b"\x00\x01" + b"\x00" * 146
    return [(17, bytes([7 << 3]) + rng.randbytes(40)), (6, b"\x00\x2a" + bytes([7 << 3]) + rng.randbytes(41)),
            (17, b"\x01\x00\x00\x00" + rng.randbytes(144)), (17, b"\x04\x00\x00\x00" + rng.randbytes(60)),
            (17, ike), (17, b"\x00\x00\x00\x00" + ike), (17, l2tp), (6, pptp), (47, b"\x30\x81\x88\x0b" + rng.randbytes(20)),
            (6, b"SSH-2.0-OpenSSH_9.2\r\n"), (6, hello), (17, b"\xc3\x00\x00\x00\x01\x08" + rng.randbytes(1200)),
            (17, dns), (6, b"GET / HTTP/1.1\r\nHost: twitter.com\r\n\r\n"), (6, rng.randbytes(300)), (50, rng.randbytes(64))]


def frame(proto: int, payload: bytes, sport: int, dport: int) -> bytes:
    f = tcp_segment(Endpoints(MAC, MAC, b"\x0a\x00\x00\x0b", b"\xc6\x12\x00\x14", sport, dport), 1, 1, 0x18, payload)
    if proto == 6:
        return f
    if proto == 17:
        udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
        return f[:16] + struct.pack(">H", 20 + len(udp)) + f[18:23] + b"\x11" + f[24:34] + udp
    return f[:16] + struct.pack(">H", 20 + len(payload)) + f[18:23] + bytes([proto]) + f[24:34] + payload


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and data:                        # flip bytes (headers included: lengths, IHL, offsets)
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:                               # truncate anywhere
            del data[rng.randrange(len(data) + 1):]
        elif op == 2:                               # append garbage
            data += rng.randbytes(rng.randint(1, 64))
        elif op == 3 and len(data) > 20:            # bogus IPv4 total length / TCP data offset
            pos = rng.choice([16, 17, 46])
            if pos < len(data):
                data[pos] = rng.randrange(256)
        else:                                       # splice random bytes in
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="gfw")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    profile = profiles.load(args.profile)
    engine = Engine(profile, seed=args.seed)
    base = seeds(rng)
    t0 = time.perf_counter()
    for i in range(args.inputs):
        if i % 50_000 == 0:
            engine = Engine(profile, seed=args.seed)   # fresh flows: keep the slow path busy
            base = seeds(rng)
        kind = rng.random()
        if kind < 0.1:
            data = rng.randbytes(rng.randint(0, 200))   # raw garbage behind an Ethernet header
            data = b"\x02" * 12 + b"\x08\x00" + data
        else:
            proto, payload = rng.choice(base)
            data = frame(proto, payload, rng.randint(1024, 65535), rng.choice([53, 443, 500, 1194, 1701, 1723, 4500,
                                                                               8388, 51820, rng.randint(1, 65535)]))
            if kind < 0.85:
                data = mutate(rng, data)
        try:
            engine.feed(data, i * 1e-4)
            engine.drain()
        except Exception:   # noqa: BLE001 - the point of a fuzzer
            print(f"input {i} raised:\n{traceback.format_exc()}\nframe: {data.hex()}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - t0
    print(f"{args.inputs} inputs, no exception, in {elapsed:.1f}s ({args.inputs / elapsed:,.0f}/s); "
          f"engine saw {engine.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
