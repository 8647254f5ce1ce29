"""The Go build step (scripts/go-tools.sh, tunnelwall/base/gotools.py): pins
parse with file:line errors, a tool whose Go is missing or too old is
reported unsupported with the command that enables it, and the build
script says so in one line and exits 0. Nothing here builds anything: the
`go` these tests run is a fake that only prints its version."""

import os
import subprocess
from pathlib import Path

import pytest

from tunnelwall.base import gotools
from tunnelwall.base.errors import SourceError
from tunnelwall.harness import spec

ROOT = Path(__file__).resolve().parents[2]

PIN = "xray github.com/xtls/xray-core/main v1.260327.0 1.26 -\n"


def fake_go(tmp_path: Path, version: str) -> Path:
    """A `go` that answers `go version` like Debian 12's, and fails loudly at anything else."""
    go = tmp_path / "go"
    go.write_text(f"#!/bin/sh\n[ \"$1\" = version ] && {{ echo 'go version go{version} linux/amd64'; exit 0; }}\n"
                  f"echo \"fake go: unexpected $*\" >&2; exit 99\n")
    go.chmod(0o755)
    return go


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Pins and cache of the test's own, so the machine's builds do not count."""
    pins = tmp_path / "pins.txt"
    pins.write_text("# comment\n\n" + PIN)
    monkeypatch.setenv("TUNNELWALL_GO_PINS", str(pins))
    monkeypatch.setenv("TUNNELWALL_GO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_the_repository_pins_parse_and_name_real_versions():
    pinned = gotools.pins()
    assert {"xray", "sing-box", "amneziawg-go"} <= set(pinned)
    assert pinned["xray"].package == "github.com/xtls/xray-core/main"
    assert all(t.version.startswith("v") for t in pinned.values())


@pytest.mark.parametrize("text,line,message", [
    ("a b v1.0.0 1.21\n", 1, "expected 5 columns"),
    ("# c\nX pkg v1.0.0 1.21 -\n", 2, "name 'X'"),
    ("a pkg latest 1.21 -\n", 1, "version 'latest'"),
    ("a pkg v1.0.0 go1.21 -\n", 1, "go 'go1.21'"),
    ("a pkg v1.0.0 1.21 -\na pkg v1.0.1 1.21 -\n", 2, "'a' is pinned twice"),
])
def test_bad_pin_lines_name_their_line(text, line, message):
    with pytest.raises(SourceError) as err:
        gotools.parse(text, "pins.txt")
    assert err.value.line == line and message in str(err.value)


def test_old_go_makes_the_tool_unsupported_with_the_enabling_command(isolated, monkeypatch):
    monkeypatch.setenv("TUNNELWALL_GO", str(fake_go(isolated, "1.19.8")))
    assert gotools.missing(["go:xray", "curl"]) == [
        "xray v1.260327.0 needs Go >= 1.26 to build, this machine has Go 1.19.8; with a newer one: "
        "TUNNELWALL_GO=/path/to/go bash scripts/setup.sh"]


def test_no_go_at_all(isolated, monkeypatch):
    monkeypatch.setenv("TUNNELWALL_GO", str(isolated / "no-such-go"))
    assert gotools.missing(["go:xray"]) == [
        "xray v1.260327.0 needs Go >= 1.26 to build, and there is no Go here; with one: "
        "TUNNELWALL_GO=/path/to/go bash scripts/setup.sh"]


def test_new_enough_go_but_not_built_says_run_setup(isolated, monkeypatch):
    monkeypatch.setenv("TUNNELWALL_GO", str(fake_go(isolated, "1.26.8")))
    assert gotools.missing(["go:xray"]) == ["xray v1.260327.0 is not built yet: bash scripts/setup.sh"]


def test_built_binary_counts_only_with_its_pin_in_the_stamp(isolated, monkeypatch):
    monkeypatch.setenv("TUNNELWALL_GO", str(fake_go(isolated, "1.19.8")))
    tool = gotools.pins()["xray"]
    exe = gotools.binary(tool)
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (exe.parent / ".stamp").write_text(tool.pin_line.replace("1.26 -", "1.26 with_x") + "\n")
    assert gotools.missing(["go:xray"]), "a build with other tags is not this pin's"
    (exe.parent / ".stamp").write_text(tool.pin_line + "\n")
    assert gotools.missing(["go:xray"]) == []
    assert gotools.path_dirs(["go:xray", "kernel:tun"]) == [str(exe.parent)]


def test_unpinned_requirement_is_a_load_error(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("name: t\nrequires: [\"go:nosuch\"]\ntraffic: {url: \"http://{web_ip}/\"}\n")
    with pytest.raises(SourceError) as err:
        spec.load(str(bad))
    assert err.value.line == 2 and "'go:nosuch' is not pinned" in str(err.value)


def test_go_tool_without_go_is_unsupported_not_blocked(isolated, monkeypatch, tmp_path):
    """The forced path of a machine with Debian 12's Go 1.19: the tool's run
    is ERROR flagged unsupported (so verify --tools all still passes), with
    the reason; it never reaches the censor."""
    from tunnelwall.base.runstate import RunState
    from tunnelwall.harness import runner
    monkeypatch.setenv("TUNNELWALL_GO", str(fake_go(isolated, "1.19.8")))
    tool = tmp_path / "x.yaml"
    tool.write_text("name: x\nrequires: [\"go:xray\"]\nserver: {run: xray run}\ntraffic: {url: \"http://{web_ip}/\"}\n")
    from tunnelwall.base.layout import InterfaceLayout, Layout, NodeLayout
    state = RunState(run_id="t", profile="gfw", log_dir=str(tmp_path), layout=Layout("t", nodes={
        name: NodeLayout(role, f"tw-{name}", i, {"e": InterfaceLayout(f"02:00:00:00:00:0{i}", address)})
        for i, (name, role, address) in enumerate([("c1", "client", "10.0.0.2/24"), ("vpn", "server", "198.18.0.20/24"),
                                                   ("web", "server", "198.18.0.10/24")], 1)}))
    result = runner.run_tool(state, spec.load(str(tool)))
    assert result.outcome == runner.ERROR and result.unsupported and not result.detected
    assert "needs Go >= 1.26 to build, this machine has Go 1.19.8" in result.error


def run_build_script(tmp_path: Path, go: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TUNNELWALL_GO": str(go), "TUNNELWALL_GO_CACHE": str(tmp_path / "cache")}
    return subprocess.run(["bash", str(ROOT / "scripts" / "go-tools.sh")], capture_output=True, text=True,
                          env=env, timeout=60)


def test_build_script_with_old_go_says_so_in_one_line_and_goes_on(tmp_path):
    """Debian 12's Go 1.19 is too old for every pin but WebTunnel's (Go
    1.18): those are named in one line and never built; WebTunnel's build is
    tried (the fake go fails it, as a proxy outage would) and named as failed."""
    pinned = gotools.parse((ROOT / "tunnelwall" / "tools" / "go-tools.txt").read_text()).values()
    too_old = [t.name for t in pinned if tuple(map(int, t.min_go.split("."))) > (1, 19, 8)]
    buildable = [t.name for t in pinned if t.name not in too_old]
    res = run_build_script(tmp_path, fake_go(tmp_path, "1.19.8"))
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.strip().splitlines() if not line.startswith("setup: building")]
    skipped = [line for line in lines if line.startswith("setup: Go 1.19.8 (")]
    assert len(skipped) == 1 and "not building xray (Go 1.26)" in skipped[0]
    assert all(f"{name} (Go " in skipped[0] for name in too_old)
    assert "TUNNELWALL_GO=/path/to/newer/go bash scripts/setup.sh" in skipped[0]
    if buildable:
        assert f"setup: go install failed for {' '.join(buildable)}" in res.stdout
    assert not any((tmp_path / "cache" / "bin").glob("*/*"))


def test_build_script_without_go(tmp_path):
    res = run_build_script(tmp_path, tmp_path / "absent")
    assert res.returncode == 0 and res.stdout.startswith("setup: Go not found (")


def test_build_script_skips_a_stamped_build_without_calling_go(tmp_path):
    """Idempotence: every pin stamped, the fake go (which fails any build) is never asked to build."""
    pinned = gotools.parse((ROOT / "tunnelwall" / "tools" / "go-tools.txt").read_text())
    for tool in pinned.values():
        exe = gotools.binary(tool, tmp_path / "cache")
        exe.parent.mkdir(parents=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
        (exe.parent / ".stamp").write_text(tool.pin_line + "\n")
    res = run_build_script(tmp_path, fake_go(tmp_path, "1.26.8"))
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
