"""Students' Unix accounts: an unprivileged shell in a student host's namespace.

``exercise start`` makes one account per student host: its own user and
group, named ``twst-<scope>-<host>`` and labelled in the comment field
(``tunnelwall student <run id>``), with its own folder (mode 0700, the
account's home and answer folder) under ``STUDENT_ROOT/<run id>/``, whose
parent lets others pass through but not list. The shell is ``ip netns exec
<namespace> setpriv`` to that user with no supplementary groups, no
capabilities and ``no_new_privs``: the student reaches the network as their
host does, and nothing else of the run's (other folders, the censor's
processes, the run's log folder with its API token) is theirs.

Accounts are removed with their run (``exercise stop``, ``down``,
``cleanup RUN``; their folders are copied into the run's log folder
first) or all together (``cleanup``): only users whose name has the prefix
*and* whose comment carries the label, never anyone else.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tunnelwall.base.errors import TunnelwallError

PREFIX = "twst-"
LABEL = "tunnelwall student"
STUDENT_ROOT = Path("/var/lib/tunnelwall/students")


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    gid: int
    run_id: str
    folder: Path


def user_name(scope: str, host: str) -> str:
    name = f"{PREFIX}{scope or 'd'}-{host}"
    if len(name) > 32:
        raise TunnelwallError(f"student host '{host}': name too long for a Unix user ({name})")
    return name


def folder_of(run_id: str, host: str) -> Path:
    return STUDENT_ROOT / run_id / host


def _labelled() -> list[pwd.struct_passwd]:
    return [p for p in pwd.getpwall() if p.pw_name.startswith(PREFIX) and p.pw_gecos.startswith(LABEL)]


def _account(entry: pwd.struct_passwd) -> Account:
    run_id = entry.pw_gecos[len(LABEL):].strip()
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, run_id, Path(entry.pw_dir))


def accounts(run_id: str | None = None) -> list[Account]:
    """Our student accounts (of one run, or all)."""
    return [_account(p) for p in _labelled() if run_id is None or _account(p).run_id == run_id]


def find(run_id: str, host: str) -> Account:
    for acc in accounts(run_id):
        if acc.folder.name == host:
            return acc
    raise TunnelwallError(f"no student account for '{host}' in run {run_id} (made by tunnelwall exercise start)")


def create(run_id: str, scope: str, host: str) -> Account:
    """The account of *host*'s student (made afresh if a stale one of ours has its name)."""
    name = user_name(scope, host)
    try:
        existing = pwd.getpwnam(name)
    except KeyError:
        existing = None
    if existing is not None:
        if not existing.pw_gecos.startswith(LABEL):
            raise TunnelwallError(f"user {name} exists and is not a tunnelwall student: not touching it")
        _remove(_account(existing))
    folder = folder_of(run_id, host)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for d in (STUDENT_ROOT, folder.parent):
        os.chmod(d, 0o711)               # others may pass through to their own folder, never list
    _run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(folder),
          "--shell", "/bin/bash", "--comment", f"{LABEL} {run_id}", name])
    entry = pwd.getpwnam(name)
    folder.mkdir(exist_ok=True)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    return _account(entry)


def reset(acc: Account) -> None:
    """The student's processes ended and their folder emptied (the account stays)."""
    _kill_processes(acc.uid)
    if acc.folder.exists():
        shutil.rmtree(acc.folder)
    acc.folder.mkdir(parents=True)
    os.chown(acc.folder, acc.uid, acc.gid)
    os.chmod(acc.folder, 0o700)


def remove(run_id: str | None = None, keep_in: Path | None = None) -> list[str]:
    """Remove our accounts (of one run, or all) and their folders, first
    copying each folder into *keep_in*/HOST (the run's logs: answers stay
    for grading); returns what went."""
    removed = []
    for acc in accounts(run_id):
        _kill_processes(acc.uid)
        if keep_in is not None and acc.folder.is_dir():
            shutil.copytree(acc.folder, keep_in / acc.folder.name, dirs_exist_ok=True, symlinks=True)
        _remove(acc)
        removed.append(f"user {acc.user}")
    if run_id is not None and (STUDENT_ROOT / run_id).exists():
        shutil.rmtree(STUDENT_ROOT / run_id, ignore_errors=True)
    return removed


def _remove(acc: Account) -> None:
    _kill_processes(acc.uid)
    _run(["userdel", acc.user])
    if acc.folder.is_relative_to(STUDENT_ROOT) and acc.folder.exists():
        shutil.rmtree(acc.folder, ignore_errors=True)


def _kill_processes(uid: int) -> None:
    """Every process running as the student's user (theirs alone: the uid is the account's own)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue


def write_file(path: Path, text: str, owner: Account | None = None) -> None:
    """Write a file as root into a student's folder without following what the
    student put there: an existing name (say, a symlink to /etc/shadow) is
    removed first, and the new file must not exist (O_EXCL, O_NOFOLLOW)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        if owner is not None:
            os.fchown(fh.fileno(), owner.uid, owner.gid)


def shell_argv(acc: Account, netns: str, argv: list[str] | None = None) -> list[str]:
    """The command line of the student's shell (or of *argv* as the student) in *netns*."""
    inner = argv or ["bash", "-l"]
    return ["ip", "netns", "exec", netns, "setpriv", "--reuid", str(acc.uid), "--regid", str(acc.gid),
            "--clear-groups", "--inh-caps=-all", "--no-new-privs", "--reset-env",
            "env", f"ANSWERS={acc.folder}", *inner]


def allow_ping(netns: str) -> None:
    """Unprivileged ping (ICMP datagram sockets) for everyone in the namespace: a student's ping
    has no capability to open a raw socket."""
    _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])


def _run(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise TunnelwallError(f"{' '.join(argv[:2])}: {res.stderr.strip() or res.returncode}")
