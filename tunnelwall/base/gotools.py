"""The Go programs tools run (``requires: ["go:xray"]``), pinned in
``tunnelwall/tools/go-tools.txt`` and built by ``scripts/go-tools.sh`` into
a cache outside the repository (``$TUNNELWALL_GO_CACHE``, default
``/var/cache/tunnelwall/go``): ``bin/NAME@VERSION/NAME`` beside a
``.stamp`` holding the pin line it was built from.

A pinned program is usable when that binary is there and its stamp matches
the pin; otherwise the reason says why (no Go, a Go older than the module
needs, or simply not built yet) and the one command that enables it. Both
the build script and this module read the same file, so they cannot
disagree about what "built" means.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tunnelwall.base.errors import SourceError

PINS = Path(__file__).resolve().parents[1] / "tools" / "go-tools.txt"
DEFAULT_CACHE = Path("/var/cache/tunnelwall/go")
DEFAULT_GO = Path("/usr/local/go/bin/go")
PREFIX = "go:"
ENABLE = "TUNNELWALL_GO=/path/to/go bash scripts/setup.sh"
VERSION = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
GO_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class GoTool:
    name: str          # the binary's name, as tools' commands call it
    package: str       # the main package: go install PACKAGE@VERSION
    version: str       # the module version, as the Go module proxy knows it
    min_go: str        # the lowest Go that builds it (its go.mod's go line)
    tags: str          # build tags, comma-separated, or "-"

    @property
    def pin_line(self) -> str:
        """What scripts/go-tools.sh writes into the stamp."""
        return f"{self.name} {self.package} {self.version} {self.min_go} {self.tags}"


def pins_path() -> Path:
    return Path(os.environ.get("TUNNELWALL_GO_PINS") or PINS)


def cache_dir() -> Path:
    return Path(os.environ.get("TUNNELWALL_GO_CACHE") or DEFAULT_CACHE)


def parse(text: str, path: str = "go-tools.txt") -> dict[str, GoTool]:
    """The pins in *text*, by name; a malformed line is a SourceError with its line."""
    tools: dict[str, GoTool] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 5:
            raise SourceError(path, number, f"expected 5 columns (name package version go tags), got {len(fields)}")
        name, package, version, min_go, tags = fields
        if not re.match(r"^[a-z0-9][a-z0-9._-]*$", name):
            raise SourceError(path, number, f"name '{name}': lowercase letters, digits, '.', '_' or '-'")
        if not VERSION.match(version):
            raise SourceError(path, number, f"version '{version}': a module version such as v1.2.3")
        if not GO_VERSION.match(min_go):
            raise SourceError(path, number, f"go '{min_go}': a Go version such as 1.24 or 1.24.4")
        if name in tools:
            raise SourceError(path, number, f"'{name}' is pinned twice")
        tools[name] = GoTool(name, package, version, min_go, tags)
    return tools


def pins() -> dict[str, GoTool]:
    path = pins_path()
    return parse(path.read_text(), str(path))


def binary(tool: GoTool, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "bin" / f"{tool.name}@{tool.version}" / tool.name


def is_built(tool: GoTool, cache: Path | None = None) -> bool:
    exe = binary(tool, cache)
    try:
        stamp = (exe.parent / ".stamp").read_text().strip()
    except OSError:
        return False
    return stamp == tool.pin_line and os.access(exe, os.X_OK)


def go_command() -> str | None:
    """The Go the build script would use: $TUNNELWALL_GO, `go` on PATH, /usr/local/go/bin/go."""
    if os.environ.get("TUNNELWALL_GO"):
        return os.environ["TUNNELWALL_GO"]
    found = shutil.which("go")
    if found:
        return found
    return str(DEFAULT_GO) if os.access(DEFAULT_GO, os.X_OK) else None


def go_version(go: str | None) -> str | None:
    """'1.26.8' from `go version` (None when there is no working go)."""
    if not go:
        return None
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"go version go(\d+\.\d+(?:\.\d+)?)", out)
    return m.group(1) if m else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def why_not(tool: GoTool, go_found: str | None) -> str | None:
    """Why *tool* cannot run here (None: built and current), as one line
    with the command that enables it. *go_found*: this machine's Go version."""
    if is_built(tool):
        return None
    what = f"{tool.name} {tool.version}"
    if go_found is None:
        return f"{what} needs Go >= {tool.min_go} to build, and there is no Go here; with one: {ENABLE}"
    if version_tuple(go_found) < version_tuple(tool.min_go):
        return f"{what} needs Go >= {tool.min_go} to build, this machine has Go {go_found}; with a newer one: {ENABLE}"
    return f"{what} is not built yet: bash scripts/setup.sh"


def missing(requirements: list[str]) -> list[str]:
    """The ``go:NAME`` entries of *requirements* that cannot run here, each
    as a one-line reason; an unpinned name is reported too."""
    wanted = [r[len(PREFIX):] for r in requirements if r.startswith(PREFIX)]
    if not wanted:
        return []
    pinned = pins()
    out, go_found, asked = [], None, False
    for name in wanted:
        tool = pinned.get(name)
        if tool is None:
            out.append(f"'{name}' is not pinned in {pins_path().name} (pinned: {', '.join(sorted(pinned))})")
            continue
        if not is_built(tool) and not asked:
            go_found, asked = go_version(go_command()), True
        reason = why_not(tool, go_found)
        if reason:
            out.append(reason)
    return out


def path_dirs(requirements: list[str]) -> list[str]:
    """The folders holding the built binaries of the ``go:NAME`` requirements,
    to put in front of PATH for the tool's commands."""
    pinned = pins()
    return [str(binary(pinned[r[len(PREFIX):]]).parent) for r in requirements
            if r.startswith(PREFIX) and r[len(PREFIX):] in pinned]
