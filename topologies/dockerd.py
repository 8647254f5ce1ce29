"""tunnelwall's own Docker engine, for container nodes.

No Docker engine runs on these machines by default, and a system one (if
any) is not ours to touch: tunnelwall starts its own ``dockerd`` with its own
socket, data root and exec root, no bridge and no iptables rules (containers
get their links from the topology, nothing else). Its PID and start time are
recorded in ``/run/tunnelwall/engine.json``; ``tunnelwall cleanup`` stops it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from tunnelwall.base import procs
from tunnelwall.base.errors import EnvironmentProblem
from tunnelwall.base.runstate import STATE_DIR, ProcessRecord

SOCKET = "/run/tunnelwall-docker.sock"
DATA_ROOT = "/var/lib/tunnelwall/docker"
EXEC_ROOT = "/run/tunnelwall-docker"
RECORD = STATE_DIR / "engine.json"
LOG = Path("/var/log/tunnelwall/dockerd.log")
LABEL = "tunnelwall-run"


def client():
    try:
        import docker
    except ImportError:
        raise EnvironmentProblem("the Python docker SDK is missing: run scripts/setup.sh") from None
    return docker.DockerClient(base_url=f"unix://{SOCKET}", timeout=60)


def _recorded() -> ProcessRecord | None:
    try:
        return ProcessRecord(**json.loads(RECORD.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running() -> bool:
    if not Path(SOCKET).exists():
        return False
    try:
        client().ping()
        return True
    except Exception:   # noqa: BLE001 - any failure means "not usable"
        return False


def ensure() -> None:
    """Start our dockerd if it is not running; errors say what is missing."""
    if running():
        return
    if shutil.which("dockerd") is None:
        raise EnvironmentProblem("container nodes need Docker: dockerd is not installed (run scripts/setup.sh)")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    argv = ["dockerd", "--host", f"unix://{SOCKET}", "--data-root", DATA_ROOT, "--exec-root", EXEC_ROOT,
            "--pidfile", f"{EXEC_ROOT}.pid", "--bridge", "none", "--iptables=false", "--ip6tables=false"]
    with open(LOG, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    for _ in range(100):
        st = procs.starttime(proc.pid)
        if st is not None:
            break
        time.sleep(0.01)
    RECORD.write_text(json.dumps(ProcessRecord("dockerd", proc.pid, st or 0, None, str(LOG), argv).__dict__))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if running():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise EnvironmentProblem(f"the Docker engine did not start; its log ({LOG}):\n{procs.tail(LOG)}")


def stop() -> list[str]:
    """Remove our containers and stop our dockerd (cleanup)."""
    removed = []
    if running():
        for c in client().containers.list(all=True, filters={"label": LABEL}):
            c.remove(force=True)
            removed.append(f"container {c.name}")
    rec = _recorded()
    if rec is not None:
        if procs.stop(rec, timeout=10):
            removed.append(f"process dockerd (pid {rec.pid})")
        RECORD.unlink(missing_ok=True)
    return removed


def image_exists(name: str) -> bool:
    import docker
    try:
        client().images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False
