"""Which Open vSwitch datapath the run's bridges use: the kernel's or the
userspace one.

Open vSwitch forwards either in the kernel (module ``openvswitch``,
``datapath_type=system``) or in ``ovs-vswitchd`` itself
(``datapath_type=netdev``). The userspace datapath needs no module, so it
runs everywhere, but every packet costs the switch a receive, a lookup and
a send in one process: on a 2-core machine without the module, the switch
is most of a short connection's CPU, and the censor's extra lookups (a
second pass through the connection tracker for tracked flows, the frames to
the middlebox and back) are what keep the censored connection rate below
the uncensored one (benchmarks/connections.py counts them). Most Linux
machines that run Open vSwitch have the module loaded by its service, and
there the same pipeline runs in the kernel.

``auto`` (the default; ``$TUNNELWALL_DATAPATH`` sets another for every run
a process brings up, harness, pytest plugin and cluster workers included)
takes the kernel datapath when the module is loaded, and the userspace one
otherwise; ``kernel`` insists (loading the module if
it can, else a clear error before anything is created); ``user`` keeps the
userspace one, as on the machines this project is tested on. The pipeline
(controller/pipeline.py) is the same on both: tcp_flags, ct() with a zone
and a mark, VLAN pop and meters exist in both datapaths.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tunnelwall.base.errors import EnvironmentProblem, TunnelwallError

CHOICES = ("auto", "kernel", "user")   # the kinds chosen are Mininet's own names: datapath="kernel" | "user"
MODULE = "openvswitch"
# ovs-appctl dpctl/* names each datapath by type; a machine can have both
# (our userspace bridges beside the host's kernel ones), and then a dpctl
# command without a name does not know which one is meant.
DPCTL_NAME = {"kernel": "system@ovs-system", "user": "netdev@ovs-netdev"}


def module_loaded(sys_module: Path = Path("/sys/module")) -> bool:
    return (sys_module / MODULE).is_dir()


def choose(asked: str, loaded: bool) -> str | None:
    """The datapath for *asked* ("auto", "kernel" or "user") when the module
    is *loaded* or not: "kernel" or "user", or None where "kernel" was asked
    for and the module is not loaded (the caller may try to load it)."""
    if asked not in CHOICES:
        raise ValueError(f"datapath '{asked}': choose one of {', '.join(CHOICES)}")
    if asked == "user" or (asked == "auto" and not loaded):
        return "user"
    return "kernel" if loaded else None


def resolve(asked: str | None = None) -> str:
    """:func:`choose` on this machine for *asked* (None: ``$TUNNELWALL_DATAPATH``,
    else "auto"); for "kernel" without the module loaded, one ``modprobe``
    first (what Open vSwitch's own service does)."""
    if asked is None:
        asked = os.environ.get("TUNNELWALL_DATAPATH") or "auto"
        if asked not in CHOICES:
            raise TunnelwallError(f"TUNNELWALL_DATAPATH={asked}: choose one of {', '.join(CHOICES)}")
    kind = choose(asked, module_loaded())
    if kind is None:
        res = subprocess.run(["modprobe", MODULE], capture_output=True, text=True)
        kind = choose(asked, module_loaded())
        if kind is None:
            why = (res.stderr.strip().splitlines() or ["not loaded"])[-1]
            raise EnvironmentProblem(f"--datapath kernel: Open vSwitch's kernel module is not available "
                                     f"({why}); use --datapath user (or auto)")
    return kind
