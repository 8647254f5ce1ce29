"""Collateral damage: what a censor costs ordinary users.

A benign traffic mix from the client nodes to the outside web server, each
connection classed by what happened to it:

* ``https``: TLS to many ordinary names (SNI), sizes from 2 kB to 200 kB;
* ``http``: plain HTTP with those names as the Host header;
* ``dns``: UDP queries for those names (the real answer is the web server).

Outcomes per connection: ``ok``; ``reset`` (a RST ended it); ``blocked``
(nothing came through in time); ``throttled`` (it completed, below
``THROTTLED_MBIT``); ``poisoned`` (a DNS answer that is not the real one).
Per class and outcome the rate comes with its 95 % Wilson interval. Russia's
2021 Twitter throttling matched SNIs with the loose glob ``*t.co*`` and slowed
microsoft.com and reddit.com too (Xue et al., IMC 2021): ``tunnelwall
collateral --profile tspu-2021`` shows that cost.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass

from tunnelwall.base import procs
from tunnelwall.base.runstate import RunState
from tunnelwall.harness.stats import wilson
from tunnelwall.runtime.network import BENIGN_NAMES

NAMES = list(BENIGN_NAMES)      # in the outside DNS server's zone too
SIZES = [200_000, 50_000, 10_000, 2_000]
THROTTLED_MBIT = 1.0
CLASSES = ("https", "http", "dns")


@dataclass
class Attempt:
    kind: str
    name: str
    outcome: str
    detail: str = ""


def _in(state: RunState, node: str, argv: list[str], timeout: float, host: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(procs.in_netns(state.netns_of(node), argv, host_binaries=host), capture_output=True, text=True,
                          timeout=timeout)


def _fetch(state: RunState, node: str, web: str, kind: str, name: str, size: int) -> Attempt:
    url = f"{kind}://{name}/bytes/{size}"
    port = 443 if kind == "https" else 80
    res = _in(state, node, ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}",
                            "--resolve", f"{name}:{port}:{web}", "--max-time", "15", "--connect-timeout", "5",
                            "--speed-limit", "1", "--speed-time", "6", url], timeout=30)
    code, got, speed = (res.stdout.split() + ["0", "0", "0"])[:3]
    if res.returncode in (35, 56) or "reset" in res.stderr.lower():
        return Attempt(kind, name, "reset", f"curl exit {res.returncode}")
    if code != "200" or int(float(got)) < size:
        return Attempt(kind, name, "blocked", f"curl exit {res.returncode}, {got} of {size} bytes")
    mbit = float(speed) * 8 / 1e6
    if size >= 50_000 and mbit < THROTTLED_MBIT:
        return Attempt(kind, name, "throttled", f"{mbit:.3f} Mbit/s")
    return Attempt(kind, name, "ok")


def _query(state: RunState, node: str, web: str, name: str) -> Attempt:
    res = _in(state, node, [sys.executable, "-m", "tunnelwall.services.dnsserver", "--query", name, "--server", web],
              timeout=15, host=True)
    answer = res.stdout.strip()
    if res.returncode != 0 or not answer:
        return Attempt("dns", name, "blocked", res.stderr.strip()[-80:])
    return Attempt("dns", name, "ok" if answer == web else "poisoned", answer)


def run(state: RunState, connections: int, seed: int = 1) -> list[Attempt]:
    """*connections* attempts: the classes in turn, every name in turn within
    a class (the largest size on the first pass), clients drawn at random."""
    nodes = state.layout["nodes"]
    clients = [n for n, i in nodes.items() if i["role"] == "client"]
    web_node = "web" if "web" in nodes else next(n for n, i in nodes.items() if i["role"] == "server")
    web = next(i["address"].split("/")[0] for i in nodes[web_node]["interfaces"].values() if i["address"])
    rng = random.Random(seed)
    attempts = []
    for i in range(connections):
        kind, turn = CLASSES[i % len(CLASSES)], i // len(CLASSES)
        client, name = rng.choice(clients), NAMES[turn % len(NAMES)]
        if kind == "dns":
            attempts.append(_query(state, client, web, name))
        else:
            attempts.append(_fetch(state, client, web, kind, name, SIZES[(turn // len(NAMES)) % len(SIZES)]))
    return attempts


def summarize(attempts: list[Attempt]) -> list[dict]:
    rows = []
    for kind in CLASSES:
        mine = [a for a in attempts if a.kind == kind]
        for outcome in ("blocked", "reset", "throttled", "poisoned"):
            hits = [a for a in mine if a.outcome == outcome]
            lo, hi = wilson(len(hits), len(mine))
            if mine and (hits or outcome == "blocked"):
                rows.append({"class": kind, "outcome": outcome, "connections": len(mine), "hits": len(hits),
                             "rate": round(len(hits) / len(mine), 4), "ci95": [round(lo, 4), round(hi, 4)],
                             "names": sorted({a.name for a in hits})})
    return rows
