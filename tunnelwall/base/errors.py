"""User-facing errors: one clear line, never a traceback.

Every error a user can cause (bad YAML, unknown names, a tool that will not
start) is raised as a :class:`TunnelwallError`; the CLI prints ``str(err)``
and exits non-zero. Position-aware errors read like compilers' do::

    topologies/x.yaml:12: link 'c1-r1': unknown node 'r9'
"""

from __future__ import annotations


class TunnelwallError(Exception):
    """An error the user can act on; printed as one line by the CLI."""

    exit_code = 2


class SourceError(TunnelwallError):
    """An error at a position in a YAML file."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class EnvironmentProblem(TunnelwallError):
    """The machine lacks something (a binary, root, Open vSwitch)."""

    exit_code = 3


def exit_code_of(work) -> int:
    """Run *work()* as a program's main: its int result (None: 0) is the
    exit code; a TunnelwallError is one line on stderr with its exit code,
    Ctrl-C 130, never a traceback."""
    import sys
    try:
        return work() or 0
    except TunnelwallError as err:
        print(f"tunnelwall: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("tunnelwall: interrupted", file=sys.stderr)
        return 130


def json_child(work) -> int:
    """The main of a child process that answers in JSON: what *work()*
    returns goes to stdout as one JSON document; errors as :func:`exit_code_of`."""
    import json
    import sys

    def answer() -> int:
        json.dump(work(), sys.stdout, default=str)
        sys.stdout.write("\n")
        return 0
    return exit_code_of(answer)
