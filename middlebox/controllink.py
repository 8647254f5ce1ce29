"""The middlebox's link to the controller: JSON lines on a Unix socket.

Losing the controller does not stop the middlebox: it keeps classifying,
queues what it would have said (at most ``PENDING_MAX`` messages), tries
to reconnect every ``RECONNECT_EVERY`` seconds and hands the queue over to
the restarted controller, in order, so the verdict log misses nothing.
Verdicts that only need logging may wait a little to go together
(``LOG_BATCH_SECONDS``, ``LOG_BATCH_MAX``): under many short connections
each one alone cost the controller a wake-up of its own. Anything else
sends the batch first, so the controller sees messages in the order they
were made.
"""

from __future__ import annotations

import collections
import json
import select
import socket
import time
from typing import Callable

RECONNECT_EVERY = 0.25           # seconds between attempts while the controller is away
PENDING_MAX = 10_000             # messages kept for a controller that is away
LOG_BATCH_SECONDS = 0.01
LOG_BATCH_MAX = 32


class ControllerLink:
    def __init__(self, connect: Callable[..., socket.socket], path: str, poller: select.epoll,
                 hello: Callable[[], dict]):
        self.connect, self.path, self.poller, self.hello = connect, path, poller, hello
        self.conn: socket.socket | None = None
        self.buffer = b""
        self.pending: collections.deque = collections.deque(maxlen=PENDING_MAX)
        self.next_attempt = 0.0
        self.batch: list[dict] = []                     # logged-only messages not sent yet
        self.batch_due = 0.0
        self.attach(connect(path))

    @property
    def up(self) -> bool:
        return self.conn is not None

    def fileno(self) -> int:
        return self.conn.fileno()

    def attach(self, conn: socket.socket) -> None:
        self.conn, self.buffer = conn, b""
        self.poller.register(conn.fileno(), select.EPOLLIN)
        queued = list(self.pending)
        self.pending.clear()
        self.send(self.hello())
        for msg in queued:
            self.send(msg)
        if self.conn is not None and self.next_attempt:
            print(f"middlebox: controller is back; handed over {len(queued)} queued messages", flush=True)

    def detach(self) -> None:
        print("middlebox: lost the controller; classifying on and reconnecting", flush=True)
        try:
            self.poller.unregister(self.conn.fileno())
        except (OSError, ValueError):
            pass
        self.conn.close()
        self.conn = None
        self.next_attempt = time.monotonic() + RECONNECT_EVERY

    def reconnect(self) -> None:
        self.next_attempt = time.monotonic() + RECONNECT_EVERY
        try:
            conn = self.connect(self.path, timeout=0)    # one attempt
        except OSError:
            return
        self.attach(conn)

    def send(self, msg: dict, batch: bool = False) -> None:
        """A message to the controller, in order; *batch*: one that only needs
        logging may wait for others (LOG_BATCH_SECONDS)."""
        if batch and self.conn is not None:
            if not self.batch:
                self.batch_due = time.monotonic() + LOG_BATCH_SECONDS
            self.batch.append(msg)
            if len(self.batch) >= LOG_BATCH_MAX:
                self.flush()
            return
        self.flush()
        if self.conn is None:
            self.pending.append(msg)
            return
        try:
            self.conn.sendall((json.dumps(msg, default=str) + "\n").encode())
        except OSError:
            self.detach()
            self.pending.append(msg)

    def flush(self) -> None:
        """The batched messages, in one write."""
        if not self.batch:
            return
        msgs, self.batch = self.batch, []
        if self.conn is None:
            self.pending.extend(msgs)
            return
        try:
            self.conn.sendall("".join(json.dumps(m, default=str) + "\n" for m in msgs).encode())
        except OSError:
            self.detach()
            self.pending.extend(msgs)

    def receive(self) -> list[dict] | None:
        """The complete messages the controller sent; None when it went away."""
        try:
            data = self.conn.recv(65536)
        except OSError:
            return None
        if not data:
            return None
        self.buffer += data
        out = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
