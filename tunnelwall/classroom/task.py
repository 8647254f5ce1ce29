"""What a class's task runs on its worker, as a child process of the
worker: ``python -m tunnelwall.classroom.task start|check|cleanup ARGS_JSON``.

A group's testbed outlives the task that started it, so it is brought up in
a process of its own rather than in the worker; the child calls the
classroom library directly (not the ``tunnelwall`` command line, which is
the layer above). It prints one JSON document on stdout; an error is one
line on stderr and a non-zero exit code, which :mod:`spread` reports.
"""

from __future__ import annotations

import json
import sys

from tunnelwall.base.errors import TunnelwallError, json_child


def started(state) -> dict:
    """What the instructor's side records of a started group (also
    ``exercise start --format json``)."""
    from tunnelwall.classroom import exercises
    return {"run": state.run_id, "scope": state.scope, "students": exercises.students(state),
            "answers": str(exercises.answers_dir(state)), "api_port": state.api.port if state.api else None,
            "token_file": state.api.token_file if state.api else ""}


def start(exercise: str, seed: int | None = None) -> dict:
    """Bring the exercise up in the first free run scope of this machine."""
    from tunnelwall.classroom import exercises
    return started(exercises.start(exercises.load(exercise), seed=seed, scope=None))


def check(exercise: str, run: str) -> list[dict]:
    """The exercise's checks on run *run*, one dict per (host, goal)."""
    from tunnelwall.base.runstate import active_run
    from tunnelwall.classroom import exercises
    return [o.__dict__ for o in exercises.check(exercises.load(exercise), active_run(run))]


def cleanup(run: str) -> list[str]:
    """Tear run *run* down; what was removed."""
    from tunnelwall.base.runstate import active_run
    from tunnelwall.runtime.cleanup import teardown
    from tunnelwall.runtime.network import require_root
    require_root()
    return list(teardown(active_run(run)))


VERBS = {"start": start, "check": check, "cleanup": cleanup}


def argv(python: str, verb: str, **kwargs) -> list[str]:
    """The command line of a task's child process."""
    if verb not in VERBS:
        raise ValueError(f"no task '{verb}'")
    return [python, "-m", "tunnelwall.classroom.task", verb, json.dumps(kwargs)]


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args

    def work():
        if len(args) != 2 or args[0] not in VERBS:
            raise TunnelwallError(f"usage: python -m tunnelwall.classroom.task {'|'.join(VERBS)} ARGS_JSON")
        try:
            kwargs = json.loads(args[1])
        except ValueError as err:
            raise TunnelwallError(f"task {args[0]}: arguments are not JSON ({err})") from None
        return VERBS[args[0]](**kwargs)
    return json_child(work)


if __name__ == "__main__":
    sys.exit(main())
