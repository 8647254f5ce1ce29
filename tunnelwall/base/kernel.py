"""What this kernel can do, for tools and link conditions that need a
kernel feature (``requires: ["kernel:ppp"]`` in a tool definition).

Each feature is checked the way the program that needs it would fail: a
device node it opens, or a module it makes the kernel load. A module counts
as available when it is loaded or built in (``/sys/module/NAME``) or when
``modprobe`` can load it; nothing is loaded just to answer ``missing()``,
except by ``modprobe --dry-run``'s own lookup.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Feature:
    name: str
    what: str                       # for the error message
    device: str | None = None       # a device node that must exist
    modules: tuple[str, ...] = ()   # any one of these modules, loaded/built in or loadable


FEATURES = {
    "tun": Feature("tun", "TUN/TAP devices", device="/dev/net/tun", modules=("tun",)),
    "ppp": Feature("ppp", "PPP (pppd needs /dev/ppp, module ppp_generic)", device="/dev/ppp",
                   modules=("ppp_generic",)),
    "gre": Feature("gre", "GRE tunnels (module ip_gre)", modules=("ip_gre",)),
    "esp": Feature("esp", "kernel IPsec ESP (module esp4)", modules=("esp4",)),
    "netem": Feature("netem", "the netem qdisc (module sch_netem)", modules=("sch_netem",)),
    "openvswitch": Feature("openvswitch", "Open vSwitch's kernel datapath", modules=("openvswitch",)),
    "wireguard": Feature("wireguard", "WireGuard in the kernel (module wireguard)", modules=("wireguard",)),
}


def module_available(name: str) -> bool:
    if Path("/sys/module", name).exists():
        return True
    try:
        res = subprocess.run(["modprobe", "--dry-run", "--quiet", name], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def available(feature: str) -> bool:
    f = FEATURES[feature]
    if f.device and os.path.exists(f.device):
        return True
    # A loadable module whose node is not there yet: loading it creates the
    # node (devtmpfs), and the program's own error will say more than a guess.
    return any(module_available(m) for m in f.modules)


def missing(requirements: list[str]) -> list[str]:
    """The ``kernel:FEATURE`` entries of *requirements* this kernel lacks,
    each as a short reason. Unknown features are reported too, so a typo
    does not pass silently."""
    out = []
    for req in requirements:
        if not req.startswith("kernel:"):
            continue
        name = req.split(":", 1)[1]
        if name not in FEATURES:
            out.append(f"unknown kernel feature '{name}' (known: {', '.join(sorted(FEATURES))})")
        elif not available(name):
            out.append(f"kernel feature '{name}' ({FEATURES[name].what}) is not available on this kernel")
    return out
