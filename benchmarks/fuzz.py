#!/usr/bin/env python3
"""Long fuzzing of the middlebox (outside the test command).

    .venv/bin/python benchmarks/fuzz.py structured [--inputs 10000000] [--seed 1] [--coverage-inputs 200000]
    .venv/bin/python benchmarks/fuzz.py raw [--inputs 1000000] [--seed 1]

``structured`` (issue 34) draws the unit suite's structured inputs
(tests/unit/fuzzing.py): valid QUIC Initials encrypted with the real
Initial keys, TLS and DTLS ClientHellos, WireGuard and OpenVPN exchanges
and plaintext protocols, their plaintext mutated and re-encrypted or
re-framed, shaped on the wire; each runs through every classifier directly
and through the engine (one of three profiles in turn), with the per-packet
work budget metered and a CPU bound. A crash, a budget overrun or an input
over the CPU bound is saved in tests/fuzz_corpus/ (replayed by the unit
suite). Reported: inputs, findings, inputs per second, line coverage of
each classifier (coverage.py, ``pip install coverage``; measured over the
first ``--coverage-inputs`` inputs, where it has long stopped growing) and
the slowest input (kept in the report). The report is rewritten every
``--every`` inputs and on Ctrl-C or SIGTERM, so a run cut short still
leaves its figures.

``raw`` feeds the engine random and mutated frames: truncated IPv4/TCP/UDP headers,
bogus lengths and offsets, and payloads of every classifier's protocol
(OpenVPN, WireGuard, IKE, L2TP, PPTP, SSH, TLS ClientHello, QUIC Initial,
DNS, HTTP, random) with random bytes changed, cut or appended. Any exception
is a bug: the script prints the input that raised it and exits 1.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import struct
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

# The middlebox is imported inside the modes: the structured mode starts
# coverage.py first, so the classifiers' module-level lines count too.

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
    from tunnelwall.middlebox.inject import Endpoints, tcp_segment
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


def main_raw(argv: list[str]) -> int:
    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.engine import Engine
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="gfw")
    args = ap.parse_args(argv)
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


def classifier_files() -> list[Path]:
    return sorted(p for p in (ROOT / "middlebox" / "classifiers").glob("*.py") if p.name != "__init__.py")


def coverage_table(cov) -> list[dict]:
    """Line coverage of each classifier's file (and the packet-path parsers)."""
    rows = []
    files = classifier_files() + [ROOT / "middlebox" / n for n in ("packet.py", "defrag.py", "stream.py", "budget.py")] \
        + [ROOT / "tunnelwall" / "base" / n for n in ("quic.py", "tlshello.py", "dnsmsg.py")]
    for path in files:
        try:
            _name, statements, _excluded, missing, _text = cov.analysis2(str(path))
        except Exception:   # noqa: BLE001 - a file never imported under coverage
            continue
        covered = len(statements) - len(missing)
        rows.append({"file": str(path.relative_to(ROOT)), "statements": len(statements), "covered": covered,
                     "percent": round(100.0 * covered / max(1, len(statements)), 1)})
    return rows


def main_structured(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="structured fuzzing past encryption and framing")
    ap.add_argument("--inputs", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--coverage-inputs", type=int, default=200_000, help="inputs measured by coverage.py (0: none)")
    ap.add_argument("--every", type=int, default=100_000, help="rewrite the report every this many inputs")
    ap.add_argument("--report", default=str(ROOT / "reports" / "fuzz" / "structured.json"))
    args = ap.parse_args(argv)
    cov = None
    if args.coverage_inputs > 0:
        import coverage
        cov = coverage.Coverage(data_file=None, include=[str(ROOT / "middlebox" / "*"), str(ROOT / "tunnelwall" / "base" / "*")])
        cov.start()
    from fuzzing import CPU_LIMIT_S, run_input, save, structured_input
    rng = random.Random(args.seed)
    state = {"inputs": 0, "findings": 0, "saved": [], "slowest": None, "coverage": [], "kinds": {},
             "cpu_s": 0.0, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seed": args.seed}
    t0 = time.perf_counter()
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)

    def write(final: bool = False) -> None:
        elapsed = time.perf_counter() - t0
        state.update(wall_s=round(elapsed, 1), per_second=round(state["inputs"] / max(elapsed, 1e-9), 1),
                     finished=final)
        report.write_text(json.dumps(state, indent=1) + "\n")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        for i in range(args.inputs):
            if stop:
                break
            inp = structured_input(rng)
            findings, cpu = run_input(inp, engines=i, cpu_limit=CPU_LIMIT_S)
            state["inputs"] += 1
            state["cpu_s"] += cpu
            state["kinds"][inp.kind] = state["kinds"].get(inp.kind, 0) + 1
            if state["slowest"] is None or cpu > state["slowest"]["cpu_ms"] / 1000:
                state["slowest"] = {"cpu_ms": round(cpu * 1000, 3), "index": i, "kind": inp.kind,
                                    "packets": len(inp.packets), "bytes": sum(len(p) for _d, p in inp.packets),
                                    "input": json.loads(inp.to_json())}
            for finding in findings:
                state["findings"] += 1
                path = save(inp, finding)
                state["saved"].append(str(path.relative_to(ROOT)))
                print(f"input {i}: {finding.what} in {finding.where}: {finding.detail} -> {path}", file=sys.stderr)
            if cov is not None and state["inputs"] == args.coverage_inputs:
                cov.stop()
                state["coverage"] = coverage_table(cov)
                state["coverage_inputs"] = state["inputs"]
                cov = None
            if state["inputs"] % args.every == 0:
                write()
                print(f"{state['inputs']} inputs, {state['findings']} findings, "
                      f"{state['inputs'] / (time.perf_counter() - t0):,.0f}/s", flush=True)
    except KeyboardInterrupt:
        pass
    if cov is not None:
        cov.stop()
        state["coverage"] = coverage_table(cov)
        state["coverage_inputs"] = state["inputs"]
    write(final=True)
    print(f"{state['inputs']} inputs, {state['findings']} findings, slowest {state['slowest']['cpu_ms']} ms CPU "
          f"({state['slowest']['kind']}); report {report}")
    for row in state["coverage"]:
        print(f"  {row['file']:40} {row['covered']:4}/{row['statements']:<4} {row['percent']:5.1f} %")
    return 1 if state["findings"] else 0


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] in ("structured", "raw"):
        mode, argv = argv[0], argv[1:]
    else:
        mode = "raw"                 # what the script did before it had modes
    return main_structured(argv) if mode == "structured" else main_raw(argv)


if __name__ == "__main__":
    sys.exit(main())
