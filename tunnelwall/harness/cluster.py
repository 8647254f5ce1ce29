"""The verify matrix on a cluster of machines, with Dask distributed.

Why Dask distributed (and not Ray, or a scheduler of our own): it is pure
Python, installs from PyPI in seconds, and runs as two plain processes, a
scheduler (``tunnelwall cluster head``) and one worker per machine
(``tunnelwall cluster worker ADDRESS``), with no object store, no
dashboard and no cluster manager required. What we need from it is exactly
what it does by default: tasks go to free workers, and when a worker dies
(its connection to the scheduler drops) the scheduler runs its unfinished
tasks on another worker, so each task's result is delivered once. Ray offers
the same on top of a raylet and a shared-memory object store per node, which
is much more than a matrix of shell-sized tasks needs.

How a matrix runs: the client (``verify --cluster ADDRESS``) numbers the
cells as ``harness.matrix`` does and submits one task per *chunk*: a run of
consecutive cells of one profile, so a worker brings a testbed up once per
chunk rather than once per cell. A task runs those cells in a child process
on its worker (``tunnelwall.harness.child``, the runner as a library), in the first free run scope of that
machine (so tasks of several workers, or several slots of one, never share
a namespace), and returns its JSON results; the child gets SIGTERM if its
worker dies (PR_SET_PDEATHSIG) and tears its testbed down. Results stream
back as tasks finish and are merged into one report, identical in form to a
single machine's (``matrix.merge`` checks each cell arrives exactly once).

Security: the scheduler runs whatever its clients submit, as root, on every
worker. ``cluster head`` therefore listens on 127.0.0.1 unless told
otherwise, and ``--tls DIR`` (certificates from ``tunnelwall cluster
certs DIR``) makes scheduler, workers and clients authenticate each other
with mutual TLS: use it whenever the head listens on a network.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError
from tunnelwall.harness import matrix

WORKER_PYTHON = "{worker-python}"    # replaced on the worker by its interpreter
PR_SET_PDEATHSIG = 1


def _require_dask():
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise EnvironmentProblem("the cluster needs Dask distributed: .venv/bin/pip install 'tunnelwall[cluster]' "
                                 "(scripts/setup.sh installs it)") from None


def tls_files(tls_dir: str, role: str) -> dict[str, Path]:
    """The CA and *role*'s certificate and key, as ``cluster certs`` names them."""
    d = Path(tls_dir)
    return {"ca": d / "ca.pem", "cert": d / f"{role}.pem", "key": d / f"{role}-key.pem"}


def security(tls_dir: str | None, role: str):
    """Dask's Security for *role* (scheduler, worker, client): mutual TLS
    with the certificates in *tls_dir*, or None (plain TCP)."""
    if not tls_dir:
        return None
    from distributed.security import Security
    files = tls_files(tls_dir, role)
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise TunnelwallError(f"--tls {tls_dir}: missing {', '.join(missing)} (tunnelwall cluster certs {tls_dir})")
    kw = {"tls_ca_file": str(files["ca"]), "require_encryption": True}
    kw[f"tls_{role}_cert"] = str(files["cert"])
    kw[f"tls_{role}_key"] = str(files["key"])
    return Security(**kw)


def make_certs(directory: str) -> list[Path]:
    """A private CA and one certificate per role, for --tls."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)

    def openssl(*args):
        res = subprocess.run(["openssl", *args], capture_output=True, text=True)
        if res.returncode != 0:
            raise TunnelwallError(f"openssl {args[0]} failed: {res.stderr.strip()[-300:]}")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365",
            "-subj", "/CN=tunnelwall cluster CA", "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))
    made = [d / "ca.pem"]
    for role in ("scheduler", "worker", "client"):
        key, csr, cert = d / f"{role}-key.pem", d / f"{role}.csr", d / f"{role}.pem"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-subj", f"/CN=tunnelwall-{role}", "-keyout", str(key), "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca-key.pem"),
                "-CAcreateserial", "-days", "365", "-out", str(cert))
        csr.unlink()
        made.append(cert)
    return made


def connected_workers(address: str, tls_dir: str | None = None) -> int | None:
    """How many workers are connected to the head at *address* (None while
    it does not answer)."""
    _require_dask()
    from distributed import Client
    try:
        with Client(address, security=security(tls_dir, "client"), timeout="5s") as client:
            return len(client.scheduler_info()["workers"])
    except OSError:
        return None


# -- the two daemons --------------------------------------------------------

def head_argv(listen: str, port: int, tls_dir: str | None) -> list[str]:
    argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", listen, "--port", str(port),
            "--no-dashboard", "--no-show"]
    if tls_dir:
        f = tls_files(tls_dir, "scheduler")
        argv += ["--protocol", "tls", "--tls-ca-file", str(f["ca"]), "--tls-cert", str(f["cert"]),
                 "--tls-key", str(f["key"])]
    return argv


def worker_argv(address: str, name: str, slots: int, tls_dir: str | None) -> list[str]:
    # --no-nanny: one process per worker; when it dies, the scheduler sees the
    # connection drop at once and gives its tasks to another worker.
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name,
            "--nthreads", str(slots), "--nworkers", "1", "--no-nanny", "--no-dashboard",
            "--resources", f"testbed={slots}"]
    if tls_dir:
        f = tls_files(tls_dir, "worker")
        argv += ["--tls-ca-file", str(f["ca"]), "--tls-cert", str(f["cert"]), "--tls-key", str(f["key"])]
    return argv


def run_daemon(argv: list[str]) -> int:
    """Become the scheduler or a worker (exec: the PID stays, so whoever
    started us can stop it; Dask handles Ctrl-C and SIGTERM itself)."""
    _require_dask()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 1     # not reached


# -- tasks --------------------------------------------------------------------

def chunks(cells: list[matrix.Cell], size: int) -> list[list[matrix.Cell]]:
    """Consecutive cells of one profile, at most *size* per chunk."""
    out: list[list[matrix.Cell]] = []
    for c in cells:
        if out and out[-1][0].profile == c.profile and len(out[-1]) < size:
            out[-1].append(c)
        else:
            out.append([c])
    return out


def _die_with_parent() -> None:
    """In the child: SIGTERM when the worker that started it dies, so its
    testbed is torn down instead of outliving the task."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def on_this_worker(argv: list[str]) -> list[str]:
    """*argv* with WORKER_PYTHON replaced by this worker's own interpreter
    (its tunnelwall installation), for a task's child process."""
    return [sys.executable if a == WORKER_PYTHON else a for a in argv]


def run_chunk(argv: list[str]) -> dict:
    """A task, run on a worker: one child process running its cells (harness.child)."""
    res = subprocess.run(on_this_worker(argv), capture_output=True, text=True, preexec_fn=_die_with_parent)
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        raise RuntimeError(f"verify on {socket.gethostname()} returned no results (exit {res.returncode}): "
                           f"{res.stderr.strip()[-600:]}") from None
    doc["meta"]["worker"] = _worker_name()
    return doc


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return str(get_worker().name)
    except (ImportError, ValueError):
        return socket.gethostname()


def verify_cluster(opts, address: str, tls_dir: str | None = None, chunk: int = 0, say=print) -> dict:
    """Run *opts*' matrix (or its shard) on the cluster at *address*; return
    the merged results document."""
    _require_dask()
    from distributed import Client, as_completed
    from tunnelwall.harness.verify import child_argv, resolve
    opts = resolve(opts)
    todo = opts.cells()
    if not todo:
        raise TunnelwallError("verify --cluster: the matrix (or shard) has no cells")
    try:
        client = Client(address, security=security(tls_dir, "client"), timeout="15s")
    except (OSError, TimeoutError) as err:
        raise TunnelwallError(f"verify --cluster: cannot reach the head at {address} ({err})") from None
    with client:
        workers = client.scheduler_info()["workers"]
        if not workers:
            raise TunnelwallError(f"verify --cluster: no worker is connected to {address}")
        slots = sum(w.get("resources", {}).get("testbed", 1) for w in workers.values())
        size = chunk or max(1, -(-len(todo) // (2 * slots)))     # about two chunks per slot
        parts = chunks(todo, size)
        say(f"[cluster] {len(todo)} cells in {len(parts)} tasks on {len(workers)} workers ({slots:g} slots)")
        # The worker's own interpreter runs the child (pure=False: every
        # submission is a fresh run, never a cached result).
        futures = {client.submit(run_chunk, child_argv(opts, cells=[c.index for c in part], python=WORKER_PYTHON),
                                 pure=False, resources={"testbed": 1}, retries=1): part for part in parts}
        docs = []
        done = 0
        for fut in as_completed(futures):
            part = futures[fut]
            try:
                doc = fut.result()
            except Exception as err:     # noqa: BLE001 - a task's failure is reported, with its cells
                raise TunnelwallError(f"verify --cluster: cells {part[0].index}..{part[-1].index} "
                                      f"({part[0].profile}) failed: {err}") from None
            done += len(part)
            outcomes = ", ".join(f"{r['tool']}={r['outcome']}" for r in doc["results"])
            say(f"[cluster] {done}/{len(todo)} cells; {doc['meta'].get('worker', '?')} ran "
                f"{part[0].profile}: {outcomes}")
            docs.append((f"task {part[0].index}", doc))
    return matrix.merge(docs, shard_of=opts.shard)
