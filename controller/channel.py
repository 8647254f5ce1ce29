"""The middlebox <-> controller channel: JSON lines over a Unix socket.

Middlebox -> controller: ``{"type": "verdict", "verdict": {...}, "first_seen": EPOCH}``
and ``{"type": "hello", "profile": NAME, "placement": ...}``.
Controller -> middlebox: ``{"type": "reload", "profile": NAME}``, answered by
``{"type": "reloaded", "profile": NAME}`` or ``{"type": "error", "error": TEXT}``.

One middlebox at a time; a new connection replaces the old one (a restarted
middlebox simply reconnects).
"""

from __future__ import annotations

import json
import os
import socket

from os_ken.lib import hub


class MiddleboxChannel:
    def __init__(self, app, path: str):
        self.app = app
        self.path = path
        self.conn = None
        self.replies = hub.Queue() if hasattr(hub, "Queue") else None

    def serve(self) -> None:
        import eventlet
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = eventlet.listen(self.path, family=socket.AF_UNIX)
        os.chmod(self.path, 0o600)
        while True:
            conn, _addr = server.accept()
            hub.spawn(self._handle, conn)

    def _handle(self, conn) -> None:
        import eventlet.queue
        previous = self.conn
        self.conn = conn
        self.replies = eventlet.queue.Queue()
        if previous is not None:
            try:
                previous.close()
            except OSError:
                pass
        self.app.middlebox_changed(conn)
        reader = conn.makefile("r", encoding="utf-8")
        try:
            for line in reader:
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.app.note("bad message from middlebox", line=line[:200])
                    continue
                kind = msg.get("type")
                if kind == "verdict":
                    self.app.apply_verdict(msg["verdict"], msg.get("first_seen"))
                elif kind == "hello":
                    self.app.note("middlebox hello", profile=msg.get("profile"), placement=msg.get("placement"))
                elif kind in ("reloaded", "error"):
                    self.replies.put(msg)
        except OSError:
            pass
        finally:
            if self.conn is conn:
                self.conn = None
                self.app.middlebox_changed(None)

    def request(self, msg: dict, timeout: float) -> dict:
        import eventlet
        conn = self.conn
        if conn is None:
            raise RuntimeError("the middlebox is not connected")
        conn.sendall((json.dumps(msg) + "\n").encode())
        with eventlet.Timeout(timeout, RuntimeError("the middlebox did not answer")):
            return self.replies.get()
