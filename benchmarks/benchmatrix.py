"""The verify matrix the jobs and cluster benchmarks share: its options and
its command-line arguments, so both measure the same thing."""

from __future__ import annotations

import argparse


def add_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--profiles", default="gfw-2025,log-only")
    ap.add_argument("--tools", default="https,wireguard,openvpn-udp,shadowsocks,ssh")


def matrix(args) -> tuple[list[str], int]:
    """(verify arguments, number of cells)."""
    argv = ["--profile", args.profiles, "--tools", args.tools, "--trials", str(args.trials),
            "--bytes", "500000", "--seed", "1"]
    return argv, len(args.profiles.split(",")) * len(args.tools.split(",")) * args.trials
