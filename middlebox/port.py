"""The middlebox's port on the border switch: frames in, frames out, and
how long they waited.

Frames are read in batches (one ``recvmmsg`` in C when ``_fastpath`` is
built, else one ``recvmsg`` each), with the kernel's receive time of each,
so the daemon can tell whether it keeps up: a frame that waited longer
than the profile's ``flows.max_lag_ms`` is past capacity, and the
profile's declared ``overload`` policy decides (see :meth:`Port.shed`).
"""

from __future__ import annotations

import select
import socket
import struct
import time

from tunnelwall.base.rawsock import SOL_PACKET

from .packet import plain_synack

try:
    from ._fastpath import receive as _receive      # frames in batches, in C (optional, like the walk)
except ImportError:                                  # pragma: no cover - recvmsg one frame at a time below
    _receive = None

DRAIN_MAX = 64                   # frames read per wake-up before looking at the controller again
SO_TIMESTAMPNS = 35              # Linux: the kernel's receive time of each frame (SCM_TIMESTAMPNS alike)
PACKET_STATISTICS = 6            # Linux: frames received and dropped by the socket since the last read


class Port:
    def __init__(self, sock: socket.socket, inline: bool):
        self.sock = sock
        self.inline = inline
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.load = {"frames": 0, "shed": 0, "kernel_drops": 0, "errors": 0, "max_lag_ms": 0.0, "policed": 0,
                     "tagged": 0, "forged_tags": 0, "copies": 0}
        self.window_lag = 0.0                          # the worst wait since the last load report

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def queued(self):
        """(frame, the kernel's receive time or 0.0) of each frame waiting on
        the port, at most DRAIN_MAX: all of them read by one system call with
        the C receive, else one recvmsg per frame, each read when its turn
        comes."""
        if _receive is not None:
            frames = _receive(self.sock.fileno(), DRAIN_MAX)
            self.load["frames"] += len(frames)
            yield from frames
            return
        flags = 0                                     # the first: poll said there is one
        for _ in range(DRAIN_MAX):
            try:
                frame, ancillary, _flags, _addr = self.sock.recvmsg(65535, 64, flags)
            except BlockingIOError:
                return
            self.load["frames"] += 1
            stamp = 0.0
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack_from("qq", data)
                    stamp = sec + nsec * 1e-9
            yield frame, stamp
            flags = socket.MSG_DONTWAIT

    def waited(self, stamp: float) -> float:
        """Seconds since *stamp* (0.0 without one), kept as the window's worst."""
        lag = max(0.0, time.time() - stamp) if stamp else 0.0
        if lag > self.window_lag:
            self.window_lag = lag
        return lag

    def shed(self, frame: bytes, policy: str) -> None:
        """A frame past capacity, under the profile's overload *policy*: open
        forwards it unexamined (inline; in tap the switch already did), closed
        drops it (inline; a tap censor can only miss it)."""
        self.load["shed"] += 1
        if self.inline and policy == "open" and not plain_synack(frame):
            self.sock.send(frame)

    def load_report(self, errors: int) -> dict:
        """The counters since the start, the worst wait of this window (then
        a new window starts) and the socket's own drops."""
        try:
            _received, dropped = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.load["kernel_drops"] += dropped    # the counters reset when read
        except OSError:
            pass
        self.load["errors"] = errors
        self.load["max_lag_ms"] = round(max(self.load["max_lag_ms"], self.window_lag * 1000.0), 2)
        report = {**self.load, "lag_ms": round(self.window_lag * 1000.0, 2)}
        return report


def poller_for(*fds: int) -> select.epoll:
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    return poller
