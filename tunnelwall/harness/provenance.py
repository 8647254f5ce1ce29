"""Where a results file came from: which tunnelwall, which profile and tool
files (by content hash), the seed that applied, and how this machine
emulates the network (Open vSwitch's datapath, netem or the userspace
relay for link conditions). Two runs that differ here may differ in their
outcomes for that reason alone; ``compare`` says so.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SourceFile:
    """A profile or tool of the matrix: its name in the results, what was
    given for it (an alias such as ``gfw``, or a path), its file and the
    SHA-256 of that file's bytes."""
    name: str
    given: str
    file: str
    sha256: str


@dataclass(frozen=True)
class ProfileSource(SourceFile):
    period: str = ""
    seed: int = 0          # the seed its probabilistic rules drew with (--seed, else the profile's own)


@dataclass(frozen=True)
class Provenance:
    tunnelwall: str                      # the version
    commit: str | None                   # git commit of the checkout it ran from (None: an installed copy)
    dirty: bool | None                   # the checkout had uncommitted changes
    datapath: str                        # Open vSwitch's datapath: kernel or user
    link_conditions: str                 # netem (kernel qdisc) or relay (userspace), for delay/loss/jitter
    profiles: list[ProfileSource] = field(default_factory=list)
    tools: list[SourceFile] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Provenance":
        return cls(tunnelwall=data["tunnelwall"], commit=data.get("commit"), dirty=data.get("dirty"),
                   datapath=data["datapath"], link_conditions=data["link_conditions"],
                   profiles=[ProfileSource(**p) for p in data.get("profiles", [])],
                   tools=[SourceFile(**t) for t in data.get("tools", [])])

    def differences(self, other: "Provenance") -> list[str]:
        """What differs between two runs' provenance, one phrase each."""
        out = []
        for key in ("tunnelwall", "commit", "dirty", "datapath", "link_conditions"):
            a, b = getattr(self, key), getattr(other, key)
            if a != b:
                out.append(f"{key}: {a} -> {b}")
        for kind, mine, theirs in (("profile", self.profiles, other.profiles), ("tool", self.tools, other.tools)):
            before, after = {s.name: s for s in mine}, {s.name: s for s in theirs}
            for name in sorted(set(before) & set(after)):
                a, b = before[name], after[name]
                if a.sha256 != b.sha256:
                    out.append(f"{kind} {name}: content changed ({a.sha256[:12]} -> {b.sha256[:12]})")
                if isinstance(a, ProfileSource) and isinstance(b, ProfileSource) and a.seed != b.seed:
                    out.append(f"profile {name}: seed {a.seed} -> {b.seed}")
        return out


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout *root*, or (None, None) when it is not one."""
    if not (root / ".git").exists():
        return None, None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    return head.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


def machine() -> tuple[str, str]:
    """(datapath, link-condition mode) that a testbed on this machine gets,
    chosen the way ``up`` chooses them."""
    import os

    from tunnelwall.topologies import datapath
    from tunnelwall.topologies.layout import netem_available
    try:     # the choice without its side effect (resolve's modprobe): up does that, and says so
        dp = datapath.choose(os.environ.get("TUNNELWALL_DATAPATH") or "auto", datapath.module_loaded()) or "kernel"
    except ValueError:
        dp = "unknown"
    return dp, "netem" if netem_available() else "relay"
