"""Verdicts before and after a refactor: one hash per (capture, profile).

A change that should not change behaviour (issue 32's split of the engine)
is checked by classifying the same captures under every profile before and
after it and comparing these hashes. The captures are made once by
``flowgen`` (kept under /var/tmp so both sides read the same bytes: its TLS
sessions are real OpenSSL sessions, new keys every time it runs).

    python benchmarks/verdict_hash.py            # prints one line per capture and profile
    python benchmarks/verdict_hash.py --out F    # also writes them to F (JSON) for a later --against F
    python benchmarks/verdict_hash.py --against F
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import flowgen  # noqa: E402
from tunnelwall.middlebox import profiles  # noqa: E402
from tunnelwall.middlebox.offline import classify_pcap  # noqa: E402

HOME = Path("/var/tmp/tunnelwall-verdicts")
CAPTURES = {"mixed-100k": dict(packets=100_000, flows=2_000, seed=1),
            "short-20k": dict(packets=20_000, flows=4_000, seed=2)}


def captures() -> list[Path]:
    HOME.mkdir(parents=True, exist_ok=True)
    out = []
    for name, how in CAPTURES.items():
        path = HOME / f"{name}.pcap"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            flowgen.generate(tmp, how["packets"], how["flows"], seed=how["seed"])
            tmp.rename(path)
        out.append(path)
    return out


def verdict_hash(path: Path, profile_name: str) -> tuple[str, int]:
    """The hash of every flow's report and full verdict, in capture order."""
    digest = hashlib.sha256()
    result = classify_pcap(path, profiles.load(profile_name), seed=1)
    for report in result.flows:
        verdict = report.flow.verdict
        record = {"report": report.as_dict(), "verdict": verdict.as_dict() if verdict is not None else None}
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16], len(result.flows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--against", type=Path)
    args = ap.parse_args()
    table = {}
    for path in captures():
        for name in sorted(profiles.available()):
            h, n = verdict_hash(path, name)
            table[f"{path.stem}/{name}"] = h
            print(f"{path.stem:12} {name:18} {n:6} flows  {h}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    if args.against:
        before = json.loads(args.against.read_text())
        differ = sorted(k for k in before.keys() | table.keys() if before.get(k) != table.get(k))
        print(f"{len(table) - len(differ)}/{len(table)} identical" + (f"; differ: {', '.join(differ)}" if differ else ""))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
