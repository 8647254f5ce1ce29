"""Issue 31: students without root. Each student host gets its own Unix
account and folder; as that student, another's answers, the run's token and
the censor's processes are out of reach; stop, reset and cleanup remove
exactly the accounts they made."""

import pwd
import subprocess

from conftest import assert_nothing_left, tw

from tunnelwall.base.runstate import active_run
from tunnelwall.runtime import accounts


def as_student(host: str, command: str) -> subprocess.CompletedProcess:
    """A command in the student's shell, the way ``exercise shell`` runs it."""
    return tw("exercise", "shell", host, "--", "sh", "-c", command, check=False)


def test_students_cannot_reach_each_other_or_the_censor():
    tw("exercise", "start", "find-blocked")
    try:
        state = active_run()
        mine = {a.folder.name: a for a in accounts.accounts(state.run_id)}
        assert sorted(mine) == [f"st{i:02d}" for i in range(1, 11)]
        st01, st02 = mine["st01"], mine["st02"]
        assert st01.user == "twst-d-st01" and pwd.getpwnam(st01.user).pw_gecos == f"tunnelwall student {state.run_id}"
        assert (st01.folder.stat().st_mode & 0o777) == 0o700 and st01.folder.stat().st_uid == st01.uid

        # A student writes an answer in their own folder ...
        res = as_student("st01", 'id -un; echo "blocked: [ssh]" > "$ANSWERS/st01.yaml"; pwd; ip -br addr show eth0')
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[:2] == ["twst-d-st01", str(st01.folder)]
        assert "10.0.0.101/24" in res.stdout
        # ... which another student cannot read, list or change.
        res = as_student("st02", f"cat {st01.folder}/st01.yaml")
        assert res.returncode != 0 and "Permission denied" in res.stderr
        res = as_student("st02", f"ls {st01.folder}")
        assert res.returncode != 0 and "Permission denied" in res.stderr
        res = as_student("st02", f"ls {st01.folder.parent}")
        assert res.returncode != 0 and "Permission denied" in res.stderr
        # Neither the run's token nor its log folder.
        res = as_student("st02", f"cat {state.api.token_file}")
        assert res.returncode != 0 and "Permission denied" in res.stderr
        # Nor the censor's processes.
        middlebox = next(p for p in state.processes if p.name == "middlebox")
        res = as_student("st02", f"kill -TERM {middlebox.pid}")
        assert res.returncode != 0 and "not permitted" in res.stderr.lower()
        assert subprocess.run(["kill", "-0", str(middlebox.pid)]).returncode == 0
        # No way back to root: no capabilities, no_new_privs.
        res = as_student("st02", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
        assert "CapEff:\t0000000000000000" in res.stdout and "NoNewPrivs:\t1" in res.stdout
        # But the network, as their host: ping works unprivileged.
        res = as_student("st02", "ping -c1 -W2 10.0.0.1 >/dev/null && echo pinged")
        assert "pinged" in res.stdout, res.stderr

        # The check grades the answer in the student's folder.
        graded = tw("exercise", "check", "find-blocked", check=False).stdout
        assert "st01" in graded and "blocked: ['ssh']" in graded

        # Staged hints: one at a time, into every folder.
        out = tw("exercise", "hint").stdout
        assert out.startswith("hint 1 of ")
        assert as_student("st03", 'cat "$ANSWERS/HINTS.txt"').stdout.startswith("hint 1: ")
        # Reset: the student's folder emptied, hints kept, others untouched.
        tw("exercise", "reset", "st01")
        assert sorted(p.name for p in st01.folder.iterdir()) == ["HINTS.txt"]
        as_student("st02", "echo \"blocked: [tls]\" > \"$ANSWERS/st02.yaml\"")
        assert (st01.folder.stat().st_mode & 0o777) == 0o700
    finally:
        tw("exercise", "stop", "find-blocked")
    # The answers stay for grading: copied into the run's (root-only) logs.
    assert (state.logs / "answers" / "st02" / "st02.yaml").read_text() == "blocked: [tls]\n"
    assert accounts.accounts() == []
    assert not any(p.pw_name.startswith("twst-") for p in pwd.getpwall())
    assert_nothing_left()


def test_cleanup_removes_only_labelled_accounts():
    subprocess.run(["useradd", "--system", "--no-create-home", "--comment", "someone else", "twst-x-notours"],
                   check=True)
    try:
        tw("exercise", "start", "dns-poisoning")
        assert len(accounts.accounts(active_run().run_id)) == 10
        tw("cleanup")
        assert accounts.accounts() == []
        assert pwd.getpwnam("twst-x-notours").pw_gecos == "someone else"
    finally:
        subprocess.run(["userdel", "twst-x-notours"], check=True)
    assert_nothing_left()
