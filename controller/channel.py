"""The middlebox <-> controller channel: JSON lines over a Unix socket.

Middlebox -> controller: ``{"type": "verdict", "verdict": {...}, "first_seen": EPOCH}``
(``"reannounce": true`` when a decided flow came back after its rule expired:
rules are installed again, nothing is logged twice; ``"install": false`` on an
allowed flow's verdict: logged now, and either the switch's connection tracker
holds the flow (``flows.offload: conntrack``) or its rule comes with a
reannounce marked ``"offload": true`` once the flow has sent
``flows.offload_after`` more packets; several such verdicts may come in one write)
and ``{"type": "hello", "profile": NAME, "placement": ...}`` and, every second,
``{"type": "load", "frames": N, "shed": N, "kernel_drops": N, "max_lag_ms": X, ...}``.
Controller -> middlebox: ``{"type": "reload", "profile": NAME}``, answered by
``{"type": "reloaded", "profile": NAME}`` or ``{"type": "error", "error": TEXT}``.

Prober -> controller: ``{"type": "hello", "role": "prober"}``, then
``{"type": "probe-result", ...}``; controller -> prober: ``{"type": "probe", ...}``.

Each peer says its role in its first line (``hello``; no role means
middlebox). One connection per role; a new one replaces the old (a
restarted daemon simply reconnects).
"""

from __future__ import annotations

import json
import os
import socket

from os_ken.lib import hub

from tunnelwall.base.verdict import Verdict


class MiddleboxChannel:
    def __init__(self, app, path: str):
        self.app = app
        self.path = path
        self.conns: dict[str, object] = {}
        self.replies = None

    @property
    def conn(self):
        return self.conns.get("middlebox")

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
        reader = conn.makefile("r", encoding="utf-8")
        role = None
        try:
            for line in reader:
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.app.note("bad message on the channel", line=line[:200])
                    continue
                kind = msg.get("type")
                if role is None:
                    role = msg.get("role", "middlebox") if kind == "hello" else "middlebox"
                    previous = self.conns.get(role)
                    self.conns[role] = conn
                    if previous is not None:
                        try:
                            previous.close()
                        except OSError:
                            pass
                    if role == "middlebox":
                        self.replies = eventlet.queue.Queue()
                        self.app.middlebox_changed(conn)
                    else:
                        self.app.note(f"{role} connected")
                if kind == "verdict" and msg.get("reannounce"):
                    self.app.reinstall_verdict(Verdict.from_dict(msg["verdict"]), offload=bool(msg.get("offload")))
                elif kind == "verdict":
                    self.app.apply_verdict(Verdict.from_dict(msg["verdict"]), msg.get("first_seen"),
                                           install=msg.get("install", True))
                elif kind == "retract":
                    self.app.retract_verdict(Verdict.from_dict(msg["verdict"]), bytes.fromhex(msg.get("frame", "")))
                elif kind == "hello":
                    self.app.note(f"{role} hello", **{k: v for k, v in msg.items() if k not in ("type", "role")})
                elif kind == "load":
                    self.app.middlebox_load = {k: v for k, v in msg.items() if k != "type"}
                elif kind == "probe-result":
                    self.app.probe_result(msg)
                elif kind in ("reloaded", "error") and self.replies is not None:
                    self.replies.put(msg)
        except OSError:
            pass
        finally:
            if role is not None and self.conns.get(role) is conn:
                del self.conns[role]
                if role == "middlebox":
                    self.app.middlebox_changed(None)
                else:
                    self.app.note(f"{role} disconnected")

    def send(self, role: str, msg: dict) -> bool:
        conn = self.conns.get(role)
        if conn is None:
            return False
        try:
            conn.sendall((json.dumps(msg) + "\n").encode())
            return True
        except OSError:
            return False

    def request(self, msg: dict, timeout: float) -> dict:
        import eventlet
        if not self.send("middlebox", msg):
            raise RuntimeError("the middlebox is not connected")
        with eventlet.Timeout(timeout, RuntimeError("the middlebox did not answer")):
            return self.replies.get()
