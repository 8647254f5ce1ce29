"""What the benchmarks share: running a tunnelwall command (``tw``), and
the verify matrix of the jobs and cluster benchmarks (its options, its
command-line arguments and how a run of it is timed, so both measure the
same thing)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tw(*args: str) -> str:
    """``tunnelwall ARGS`` from the repository; its output, or exit with its error."""
    res = subprocess.run([sys.executable, "-m", "tunnelwall", *args], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"tunnelwall {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def add_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--profiles", default="gfw-2025,log-only")
    ap.add_argument("--tools", default="https,wireguard,openvpn-udp,shadowsocks,ssh")


def matrix(args) -> tuple[list[str], int]:
    """(verify arguments, number of cells)."""
    argv = ["--profile", args.profiles, "--tools", args.tools, "--trials", str(args.trials),
            "--bytes", "500000", "--seed", "1"]
    return argv, len(args.profiles.split(",")) * len(args.tools.split(",")) * args.trials


def verify(matrix_args: list[str], extra: list[str]) -> tuple[float, list]:
    """Run ``tunnelwall verify`` on the matrix with *extra* options: (wall
    seconds, (cell, outcome) per cell) to compare runs cell for cell."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "tunnelwall", "verify", *matrix_args, *extra, "--format", "json"],
                         cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        raise SystemExit(f"verify {' '.join(extra)} failed (exit {res.returncode}): {res.stderr.strip()[-800:]}")
    return wall, [(r["cell"], r["outcome"]) for r in doc["results"]]
