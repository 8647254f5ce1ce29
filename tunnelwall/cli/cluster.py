"""The ``cluster`` verbs: a head (scheduler) and workers for ``verify --cluster``."""

from __future__ import annotations

import socket
import sys

from tunnelwall.cli.main import sub_verbs, verb


def cmd_cluster(args) -> int:
    from tunnelwall.harness import cluster
    if args.cluster_verb == "certs":
        made = cluster.make_certs(args.dir)
        print(f"certs: {', '.join(str(p) for p in made)}; copy {args.dir} to every machine "
              f"(the CA key, ca-key.pem, only where new certificates are made)")
        return 0
    if args.cluster_verb == "head":
        scheme = "tls" if args.tls else "tcp"
        print(f"cluster head on {scheme}://{args.listen}:{args.port}; add a machine with: "
              f"tunnelwall cluster worker {scheme}://{_reachable(args.listen)}:{args.port}"
              f"{' --tls ' + args.tls if args.tls else ''}", file=sys.stderr, flush=True)
        return cluster.run_daemon(cluster.head_argv(args.listen, args.port, args.tls))
    from tunnelwall.runtime.network import require_root
    require_root()          # a worker brings testbeds up
    name = args.name or socket.gethostname()
    return cluster.run_daemon(cluster.worker_argv(args.address, name, args.slots, args.tls))


def _reachable(listen: str) -> str:
    return socket.gethostname() if listen in ("0.0.0.0", "::") else listen


@verb
def add_cluster(sub) -> None:
    p = sub.add_parser("cluster", help="run the verify matrix over several machines (Dask distributed)")
    csub = sub_verbs(p, dest="cluster_verb", metavar="ROLE")
    h = csub.add_parser("head", help="the scheduler: workers and 'verify --cluster' connect to it")
    h.add_argument("--listen", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another machine needs 0.0.0.0 and --tls)")
    h.add_argument("--port", type=int, default=8786, help="TCP port of the scheduler")
    h.add_argument("--tls", metavar="DIR", help="mutual TLS with the certificates of 'tunnelwall cluster certs DIR'")
    w = csub.add_parser("worker", help="a machine that runs testbeds for the head (as root)")
    w.add_argument("address", help="the head, e.g. tcp://10.1.2.3:8786 (tls://... with --tls)")
    w.add_argument("--name", help="worker name (default: the host name)")
    w.add_argument("--slots", type=int, default=1, help="testbeds this machine runs at once (default 1)")
    w.add_argument("--tls", metavar="DIR", help="mutual TLS with the certificates of 'tunnelwall cluster certs DIR'")
    c = csub.add_parser("certs", help="make a private CA and certificates for --tls")
    c.add_argument("dir", help="folder for the CA and the certificates (made if missing)")
    p.set_defaults(func=cmd_cluster)
