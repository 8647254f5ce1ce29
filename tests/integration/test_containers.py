"""Issue 6: Docker containers as topology nodes, next to namespace hosts."""

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, assert_nothing_left, in_node, tw

from tunnelwall.topologies import dockerd
from tunnelwall.runtime.api import Api
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, RunOptions, run_tool
from tunnelwall.base.runstate import active_run


@pytest.fixture(scope="module", autouse=True)
def images():
    tw("images", "build", "base", "tools", timeout=1200)      # cached after the first build


def our_containers() -> list[str]:
    if not dockerd.running():
        return []
    return [c.name for c in dockerd.client().containers.list(all=True, filters={"label": dockerd.LABEL})]


def test_wireguard_between_containers_across_the_censor():
    tw("up", "mixed", "--profile", "log-only")
    try:
        state = active_run()
        names = our_containers()
        assert len(names) == 2 and all(n.startswith(f"tw-{state.run_id}-") for n in names)
        # A container is a node like any other: addresses, routes, reachability.
        assert in_node("c1", "ping -c1 -W2 10.0.0.21").returncode == 0
        assert in_node("cc", "ping -c1 -W2 198.18.0.30").returncode == 0
        # Programs started on a container node run inside the container (its own filesystem).
        out = subprocess.run([".venv/bin/tunnelwall", "exec", "cc", "--", "cat", "/etc/hostname"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
        assert out == "cc"
        # A student or a tool on a container node cannot read the censor's API token or config.
        token = state.api.token_file
        for secret in (token, str(Path(state.log_dir) / "controller.json")):
            res = subprocess.run([".venv/bin/tunnelwall", "exec", "cc", "--", "cat", secret], cwd=ROOT,
                                 capture_output=True, text=True)
            assert res.returncode != 0 and Path(token).read_text() not in res.stdout
        opts = RunOptions(client_node="cc", server_node="vpnc")
        passed = run_tool(state, spec.load("wireguard"), opts)
        assert passed.outcome == PASSED and passed.rule == "wireguard" and passed.action == "log", passed.error
        Api(state).reload("gfw-2022")
        blocked = run_tool(state, spec.load("wireguard"), opts)
        assert blocked.outcome == BLOCKED and blocked.rule == "wireguard"
    finally:
        tw("down")
    assert our_containers() == []
    assert_nothing_left()


def test_missing_image_is_one_clear_line(tmp_path):
    topo = tmp_path / "noimage.yaml"
    topo.write_text((ROOT / "topologies" / "mixed.yaml").read_text().replace("image: tools", "image: nosuch", 1))
    res = tw("up", str(topo), check=False)
    assert res.returncode == 2 and "image 'nosuch' is not built" in res.stderr and "Traceback" not in res.stderr
    assert_nothing_left()


def test_cleanup_removes_containers_after_sigkill():
    tw("up", "mixed", "--no-censor")
    state = active_run()
    for rec in state.processes:
        subprocess.run(["kill", "-9", str(rec.pid)])
    tw("cleanup")
    assert our_containers() == []
    assert not dockerd.running()            # cleanup also stops tunnelwall's own dockerd
    assert_nothing_left()
