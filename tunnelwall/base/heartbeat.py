"""A daemon's sign of life, readable by another process: one shared page.

The middlebox's loop writes the system's monotonic clock into a small
memory-mapped file each time round (at least every ``EVERY`` seconds, idle
or not, and between batches of frames); the supervisor reads it. A loop
stuck in one packet (a parser that never returns, a C call that never
releases the interpreter) or a stopped process stops writing, whatever the
process table says. ``0.0`` means "not started yet": a respawned daemon
imports and warms up before its first beat, and must not be taken for a
stuck one meanwhile. CLOCK_MONOTONIC is one clock for every process on the
machine (tunnelwall makes no time namespaces).
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

EVERY = 0.1                      # seconds: the longest an idle loop waits between beats
MIDDLEBOX = "middlebox.beat"     # the middlebox's, in the run's log folder
_STAMP = struct.Struct("d")


class Heartbeat:
    """The writer (the daemon)."""

    def __init__(self, path: str | Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, mmap.PAGESIZE)
            self.map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)

    def beat(self, now: float | None = None) -> None:
        _STAMP.pack_into(self.map, 0, time.monotonic() if now is None else now)


def last_beat(path: str | Path) -> float:
    """The monotonic time of the last beat; 0.0 before the first (or no file)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_STAMP.size)
    except OSError:
        return 0.0
    return _STAMP.unpack(data)[0] if len(data) == _STAMP.size else 0.0


def reset(path: str | Path) -> None:
    """Mark "not started yet" (before starting the daemon again)."""
    try:
        with open(path, "r+b") as fh:
            fh.write(_STAMP.pack(0.0))
    except OSError:
        pass


def stalled_for(path: str | Path, now: float | None = None) -> float:
    """Seconds since the last beat; 0.0 before the first, and while a beat
    written ahead of time (a daemon busy with known work: a profile reload)
    has not come due."""
    beat = last_beat(path)
    return 0.0 if beat == 0.0 else max(0.0, (time.monotonic() if now is None else now) - beat)
