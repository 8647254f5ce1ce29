"""Collateral damage: what a censor costs ordinary users.

A benign traffic mix from the client nodes to the outside web server, each
connection classed by what happened to it:

* ``https``: TLS to many ordinary names (SNI), sizes from 2 kB to 200 kB;
* ``http``: plain HTTP with those names as the Host header;
* ``dns``: UDP queries for those names (the real answer is the web server);
* ``download``: a long HTTPS download (2 MB), where byte-count freezes and
  throttles show;
* ``upload``: 300 kB of random bytes (what an encrypted or compressed file
  looks like) POSTed over HTTPS and over HTTP in turn;
* ``ssh``: an SSH handshake (key exchange up to the host key) with a
  server on the outside web host, started for the purpose;
* ``quic``: a QUIC v1 first flight (an Initial with a real ClientHello for
  the name, from an ephemeral port) to udp/443; there is no QUIC server in
  the testbed, so a UDP echo there says whether the first flight arrived.

Outcomes per connection: ``ok``; ``reset`` (a RST ended it); ``blocked``
(nothing came through in time); ``cut`` (part came through, then nothing);
``throttled`` (it completed, below ``THROTTLED_MBIT``); ``poisoned`` (a DNS
answer that is not the real one). Per class and outcome the rate comes with
its 95 % Wilson interval. Russia's 2021 Twitter throttling matched SNIs with
the loose glob ``*t.co*`` and slowed microsoft.com and reddit.com too (Xue
et al., IMC 2021): ``tunnelwall collateral --profile tspu-2021`` shows that
cost.

The same classes and outcomes come from a topology's background traffic
(``traffic:`` on client nodes, ``tunnelwall.services.traffic``); ``summarize``
reads either.
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
DOWNLOAD = 2_000_000
UPLOAD = 300_000
THROTTLED_MBIT = 1.0
CLASSES = ("https", "http", "dns", "download", "upload", "ssh", "quic")
OUTCOMES = ("blocked", "reset", "cut", "throttled", "poisoned")


@dataclass
class Attempt:
    kind: str
    name: str
    outcome: str
    detail: str = ""


def _in(state: RunState, node: str, argv: list[str], timeout: float, host: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(procs.in_netns(state.netns_of(node), argv, host_binaries=host), capture_output=True, text=True,
                          timeout=timeout)


def _fetch(state: RunState, node: str, web: str, kind: str, name: str, size: int, scheme: str | None = None,
           upload: str | None = None) -> Attempt:
    """A GET of *size* bytes, or with *upload* a POST of that file (class *kind*)."""
    scheme = scheme or kind
    port = 443 if scheme == "https" else 80
    url = f"{scheme}://{name}/upload" if upload else f"{scheme}://{name}/bytes/{size}"
    res = _in(state, node, ["curl", "-sSk", "-o", "/dev/null",
                            "-w", "%{http_code} %{size_download} %{speed_download} %{size_upload} %{speed_upload} "
                                  "%{size_header}",
                            "--resolve", f"{name}:{port}:{web}", "--max-time", "30", "--connect-timeout", "5",
                            "--speed-limit", "1", "--speed-time", "6",
                            *(["--data-binary", f"@{upload}", "-H", "Content-Type: application/octet-stream"]
                              if upload else []), url], timeout=45)
    code, got, speed, sent, up_speed, header = (res.stdout.split() + ["0"] * 6)[:6]
    moved, rate = (int(float(sent)), float(up_speed)) if upload else (int(float(got)), float(speed))
    started = moved > 0 or int(float(header)) > 0     # the answer had begun (a frozen TLS record holds the body back)
    error = res.stderr.strip().lower()
    mbit = rate * 8 / 1e6
    if res.returncode in (7, 35, 56) or "reset" in error or "refused" in error:
        # A RST: during the transfer, or as the answer to the SYN (the port-443
        # event). curl's exit 7 is a connection refused at once; a dropped SYN
        # would instead run into --connect-timeout (exit 28).
        return Attempt(kind, name, "reset", f"curl exit {res.returncode}: {error[-60:]}")
    if res.returncode == 28 and moved > 0 and mbit < THROTTLED_MBIT:
        return Attempt(kind, name, "throttled", f"{mbit:.3f} Mbit/s, {moved} of {size} bytes in the time allowed")
    if code != "200" or moved < size:
        return Attempt(kind, name, "cut" if started and moved < size else "blocked",
                       f"curl exit {res.returncode}, {moved} of {size} bytes")
    if size >= 50_000 and mbit < THROTTLED_MBIT:
        return Attempt(kind, name, "throttled", f"{mbit:.3f} Mbit/s")
    return Attempt(kind, name, "ok")


def _ssh(state: RunState, node: str, web: str, name: str) -> Attempt:
    """An SSH key exchange with the outside host: ok if its host key arrives."""
    res = _in(state, node, ["ssh-keyscan", "-T", "8", "-t", "ed25519", web], timeout=20)
    if res.returncode == 0 and "ssh-ed25519" in res.stdout:
        return Attempt("ssh", name, "ok")
    return Attempt("ssh", name, "reset" if "reset" in res.stderr.lower() else "blocked", res.stderr.strip()[-80:])


def _quic(state: RunState, node: str, web: str, name: str) -> Attempt:
    res = _in(state, node, [sys.executable, "-m", "tunnelwall.services.traffic", "--once", "quic", "--web", web,
                            "--names", name], timeout=20, host=True)
    outcome = res.stdout.strip() or "blocked"
    return Attempt("quic", name, outcome if outcome in ("ok", "blocked") else "blocked", res.stderr.strip()[-80:])


def _start_udp_echo(state: RunState, node: str) -> None:
    from tunnelwall.runtime.network import wait_listening
    rec = procs.spawn(state, "collateral-udp-echo", [sys.executable, "-m", "tunnelwall.services.udpecho",
                                                     "--port", "443"], netns=state.netns_of(node), host_binaries=True)
    wait_listening(state.netns_of(node), 443, rec, udp=True)


def _start_sshd(state: RunState, node: str) -> None:
    """sshd on the outside web host, for the ssh class (its files in the run's logs)."""
    from tunnelwall.runtime.network import wait_listening
    d = state.logs / "collateral-sshd"
    d.mkdir(exist_ok=True)
    key = d / "host_key"
    if not key.exists():
        procs.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    (d / "sshd_config").write_text(f"Port 22\nListenAddress 0.0.0.0\nHostKey {key}\nPasswordAuthentication no\n"
                                   f"KbdInteractiveAuthentication no\nUsePAM no\nPidFile none\n")
    import os
    os.makedirs("/run/sshd", exist_ok=True)          # sshd's privilege-separation directory
    rec = procs.spawn(state, "collateral-sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                      netns=state.netns_of(node), host_binaries=True)
    wait_listening(state.netns_of(node), 22, rec)


def _query(state: RunState, node: str, web: str, name: str) -> Attempt:
    res = _in(state, node, [sys.executable, "-m", "tunnelwall.services.dnsserver", "--query", name, "--server", web],
              timeout=15, host=True)
    answer = res.stdout.strip()
    if res.returncode != 0 or not answer:
        return Attempt("dns", name, "blocked", res.stderr.strip()[-80:])
    return Attempt("dns", name, "ok" if answer == web else "poisoned", answer)


def run(state: RunState, connections: int, seed: int = 1, classes: tuple[str, ...] = CLASSES) -> list[Attempt]:
    """*connections* attempts: the classes in turn, every name in turn within
    a class (the largest size on the first pass), clients drawn at random."""
    clients = state.layout.by_role("client")
    web_node = "web" if "web" in state.nodes else state.layout.by_role("server")[0]
    web = next(i.ip for i in state.nodes[web_node].interfaces.values() if i.address)
    if "ssh" in classes:
        _start_sshd(state, web_node)
    if "quic" in classes:
        _start_udp_echo(state, web_node)
    upload = state.logs / "collateral-upload.bin"
    if "upload" in classes and not upload.exists():
        upload.write_bytes(random.Random(seed).randbytes(UPLOAD))     # looks like an encrypted file
    rng = random.Random(seed)
    attempts = []
    for i in range(connections):
        kind, turn = classes[i % len(classes)], i // len(classes)
        client, name = rng.choice(clients), NAMES[turn % len(NAMES)]
        if kind == "dns":
            attempts.append(_query(state, client, web, name))
        elif kind == "ssh":
            attempts.append(_ssh(state, client, web, name))
        elif kind == "quic":
            attempts.append(_quic(state, client, web, name))
        elif kind == "download":
            attempts.append(_fetch(state, client, web, kind, name, DOWNLOAD, scheme="https"))
        elif kind == "upload":
            attempts.append(_fetch(state, client, web, kind, name, UPLOAD, scheme=("https", "http")[turn % 2],
                                   upload=str(upload)))
        else:
            attempts.append(_fetch(state, client, web, kind, name, SIZES[(turn // len(NAMES)) % len(SIZES)]))
    return attempts


def from_traffic_logs(log_dir) -> list[Attempt]:
    """The attempts of a run's background traffic (traffic-NODE.jsonl)."""
    import json
    from pathlib import Path
    out = []
    for path in sorted(Path(log_dir).glob("traffic-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue            # a line being written as we read
            out.append(Attempt(rec["kind"], rec["name"], rec["outcome"], f"{rec.get('bytes', 0)} bytes"))
    return out


def summarize(attempts: list[Attempt]) -> list[dict]:
    rows = []
    for kind in CLASSES:
        mine = [a for a in attempts if a.kind == kind]
        for outcome in OUTCOMES:
            hits = [a for a in mine if a.outcome == outcome]
            lo, hi = wilson(len(hits), len(mine))
            if mine and (hits or outcome == "blocked"):
                rows.append({"class": kind, "outcome": outcome, "connections": len(mine), "hits": len(hits),
                             "rate": round(len(hits) / len(mine), 4), "ci95": [round(lo, 4), round(hi, 4)],
                             "names": sorted({a.name for a in hits})})
    return rows
