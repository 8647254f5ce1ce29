"""A link's conditions in userspace, for kernels without ``sch_netem``.

A link with ``delay``, ``loss`` and the like gets a relay at its node's end:
the node's interface ``IF`` is one end of a veth pair inside the node
(``IF`` <-> ``IFp``), the link itself ends in ``IFr``, and this process, in
the node's namespace, copies frames between ``IFp`` and ``IFr`` through a
:class:`Conditioner`, in both directions. It is transparent at layer 2
(addresses and MACs are the node's own), so nothing else in the topology
knows it is there. Where the kernel has ``sch_netem`` the backend uses that
instead (``tc qdisc ... netem``); ``up`` and ``inspect`` say which.

The conditions follow netem's meaning: every frame is delayed by ``delay``
plus a jitter drawn uniformly from [-jitter, +jitter] or normally with
sd = jitter; ``loss`` drops at random, ``loss_burst`` (p, r) drops in bursts
by a Gilbert-Elliott channel (good -> bad with p, bad -> good with r, every
frame lost while bad); ``duplicate`` sends a frame twice, ``corrupt`` flips one
random bit after the Ethernet header, and ``reorder`` sends that share of
frames at once, ahead of the delayed ones. Draws come from a seeded RNG.

Written in Python because the relay only runs where the kernel cannot do it
and its cost is per packet on one link; benchmarks/linkconditions.py
measures its accuracy and throughput beside the unimpaired link.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import time

from tunnelwall.base.rawsock import packet_socket



class Conditioner:
    """Pure: a frame in, the frames to send and after how many seconds out."""

    def __init__(self, conditions: dict, rng: random.Random):
        self.delay = conditions.get("delay_ms", 0.0) / 1000.0
        self.jitter = conditions.get("jitter_ms", 0.0) / 1000.0
        self.normal = conditions.get("jitter_distribution", "uniform") == "normal"
        self.loss = conditions.get("loss", 0.0)
        burst = conditions.get("loss_burst")
        self.burst = tuple(burst) if burst else None
        self.bad = False                      # Gilbert-Elliott state
        self.duplicate = conditions.get("duplicate", 0.0)
        self.corrupt = conditions.get("corrupt", 0.0)
        self.reorder = conditions.get("reorder", 0.0)
        self.rng = rng

    def process(self, frame: bytes) -> list[tuple[float, bytes]]:
        rng = self.rng
        if self.burst is not None:
            p, r = self.burst
            self.bad = (rng.random() >= r) if self.bad else (rng.random() < p)
            if self.bad:
                return []
        if self.loss and rng.random() < self.loss:
            return []
        if self.corrupt and len(frame) > 14 and rng.random() < self.corrupt:
            pos = rng.randrange(14, len(frame))
            frame = frame[:pos] + bytes((frame[pos] ^ (1 << rng.randrange(8)),)) + frame[pos + 1:]
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        if self.reorder and rng.random() < self.reorder:
            return [(0.0, frame)] * copies
        return [(self._delay(), frame) for _ in range(copies)]

    def _delay(self) -> float:
        if not self.jitter:
            return self.delay
        j = self.rng.gauss(0.0, self.jitter) if self.normal else self.rng.uniform(-self.jitter, self.jitter)
        return max(0.0, self.delay + j)


def one_way(conditions: dict, side: str) -> dict:
    """The conditions of one direction: the link's, with that side's overrides."""
    base = {k: v for k, v in conditions.items() if k not in ("from_node", "to_node")}
    return {**base, **conditions.get(side, {})}


def _port(iface: str) -> socket.socket:
    return packet_socket(iface, blocking=False)


def relay(a: str, b: str, conditions: dict, seed: int = 0) -> None:
    ports = {a: _port(a), b: _port(b)}
    other = {a: ports[b], b: ports[a]}
    # a is the node's side: frames read there leave the node (from_node);
    # frames read on b come to it (to_node).
    directions = {a: one_way(conditions, "from_node"), b: one_way(conditions, "to_node")}
    conditioners = {a: Conditioner(directions[a], random.Random(seed)), b: Conditioner(directions[b], random.Random(seed + 1))}
    # A link whose conditions ask for nothing (all zero) copies frames as they come.
    identity = not any(v for d in directions.values() for k, v in d.items() if k != "jitter_distribution")
    queue: list[tuple[float, int, socket.socket, bytes]] = []     # (due, order, out socket, frame)
    order = 0
    running = {"yes": True}
    signal.signal(signal.SIGTERM, lambda *_: running.update(yes=False))
    # Waiting for a due frame uses select, whose timeout is exact to the
    # microsecond; epoll rounds up to the millisecond, which would make every
    # delayed frame up to 1 ms late, but is the cheaper wait when nothing is due.
    sockets = list(ports.values())
    by_sock = {sock: (other[name], conditioners[name].process) for name, sock in ports.items()}
    poller = select.epoll()
    for sock in sockets:
        poller.register(sock.fileno(), select.EPOLLIN)
    by_fd = {sock.fileno(): sock for sock in sockets}
    print(f"relaying {a} <-> {b}: {json.dumps(conditions)}", flush=True)
    while running["yes"]:
        if queue:
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _due, _n, out, frame = heapq.heappop(queue)
                _send(out, frame)
            timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        else:
            timeout = 0.5
        try:
            if queue:
                readable, _, _ = select.select(sockets, [], [], timeout)
            else:
                readable = [by_fd[fd] for fd, _mask in poller.poll(timeout)]
        except InterruptedError:
            continue
        for sock in readable:
            out, process = by_sock[sock]
            for _ in range(64):               # drain a burst before looking at the clock again
                try:
                    frame = sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                if identity:
                    _send(out, frame)
                    continue
                for delay, out_frame in process(frame):
                    if delay <= 0:                    # no delay, or reordered ahead of the queue
                        _send(out, out_frame)
                    else:
                        order += 1
                        heapq.heappush(queue, (time.monotonic() + delay, order, out, out_frame))


def _send(out: socket.socket, frame: bytes) -> None:
    try:
        out.send(frame)
    except OSError:
        pass                                  # a full queue drops, as a link would


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the node's side (IFp)")
    ap.add_argument("--b", required=True, help="the link's side (IFr)")
    ap.add_argument("--conditions", required=True, help="JSON, as LinkConditions.as_dict()")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        relay(args.a, args.b, json.loads(args.conditions), args.seed)
    except OSError as err:
        print(f"relay: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
