"""The verdict log: one JSON object per line, flushed per line, so a crash
(even SIGKILL) loses nothing already written and never leaves half a line
of an earlier record."""

from __future__ import annotations

import json
import os
import threading


class VerdictLog:
    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        # Append mode: a restarted controller continues the same file.
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self.lock:
            # One write(2) per record: O_APPEND makes it atomic with respect to
            # other writers, and nothing sits in a user-space buffer.
            os.write(self.fd, line)

    def close(self) -> None:
        os.close(self.fd)


def read(path: str) -> list[dict]:
    """All complete records of a verdict log (a torn last line is skipped)."""
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                if line.endswith("\n"):
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out
