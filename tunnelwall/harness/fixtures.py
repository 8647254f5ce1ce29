"""pytest fixtures for tool authors (loaded by the ``pytest11`` entry point).

Write regression tests against the censor::

    import pytest

    @pytest.mark.tunnelwall(profile="gfw")
    def test_my_tool_is_not_detected_by_gfw(tunnelwall_testbed):
        result = tunnelwall_testbed.run_tool("path/to/my-tool.yaml")
        assert result.outcome == "PASSED" and not result.detected

``@pytest.mark.tunnelwall(profile=..., topology=..., overrides=[...], seed=...,
placement=...)`` chooses the testbed (defaults: ``--tunnelwall-profile``,
``--tunnelwall-topology``, else gfw on isp). Tests need root; the testbed is
torn down after each test, whatever happens in it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.runstate import RunState

__all__ = ["Testbed", "tunnelwall_testbed", "tunnelwall_factory", "pytest_addoption", "pytest_configure"]


def pytest_addoption(parser):
    group = parser.getgroup("tunnelwall")
    group.addoption("--tunnelwall-profile", default=None, help="censor profile for tunnelwall_testbed (default gfw)")
    group.addoption("--tunnelwall-topology", default=None, help="topology for tunnelwall_testbed (default isp)")


def pytest_configure(config):
    config.addinivalue_line("markers", "tunnelwall(profile, topology, overrides, seed, placement): "
                                       "the censored testbed a test runs on")


@dataclass
class Testbed:
    """A running topology with its censor, and helpers to use it."""

    state: RunState

    @property
    def profile(self) -> str | None:
        return self.state.profile

    def run_tool(self, tool, bytes: int = 2_000_000, client: str | None = None, server: str | None = None):
        """Run a tool (built-in name, YAML path or ToolSpec) and return its ToolResult."""
        from tunnelwall.harness.runner import RunOptions, run_tool
        from tunnelwall.harness.spec import ToolSpec, load
        spec = tool if isinstance(tool, ToolSpec) else load(str(tool))
        return run_tool(self.state, spec, RunOptions(bytes=bytes, client_node=client, server_node=server))

    def exec(self, node: str, command: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        """Run a shell command on a node (inside the container, for a container node)."""
        from tunnelwall.base import procs
        res = subprocess.run(procs.in_netns(self.state.netns_of(node), ["sh", "-c", command]), capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{node}: '{command}' failed ({res.returncode}): {res.stderr.strip()}")
        return res

    def spawn(self, node: str, argv: list[str], name: str | None = None):
        """Start your own daemon (server or client) on a node; stopped at teardown."""
        from tunnelwall.base import procs
        return procs.spawn(self.state, name or Path(argv[0]).name, argv, netns=self.state.netns_of(node))

    def ip(self, node: str) -> str:
        for iface in self.state.nodes[node].interfaces.values():
            if iface.address:
                return iface.ip
        raise KeyError(node)

    def verdicts(self, since: float = 0.0) -> list[dict]:
        from tunnelwall.runtime.api import Api
        return Api(self.state).verdicts(since)

    def reload(self, profile: str) -> dict:
        from tunnelwall.runtime.api import Api
        return Api(self.state).reload(profile)


class _Factory:
    def __init__(self, config):
        self.config = config
        self.running: list[RunState] = []

    def __call__(self, profile: str | None = None, topology: str | None = None, overrides=None, seed=None,
                 placement=None) -> Testbed:
        from tunnelwall.runtime.network import UpOptions, require_root, up
        if os.geteuid() != 0:
            pytest.skip("tunnelwall testbeds need root (network namespaces and Open vSwitch)")
        require_root()
        opts = UpOptions(topology=topology or self.config.getoption("--tunnelwall-topology") or "isp",
                         profile=profile or self.config.getoption("--tunnelwall-profile") or "gfw",
                         overrides=list(overrides or []), seed=seed, placement=placement,
                         scope=None)   # the first free scope: testbeds of pytest-xdist workers coexist
        try:
            state = up(opts)
        except TunnelwallError as err:
            pytest.fail(f"tunnelwall testbed did not come up: {err}")
        self.running.append(state)
        return Testbed(state)

    def teardown(self) -> None:
        from tunnelwall.runtime.cleanup import teardown
        while self.running:
            teardown(self.running.pop())


@pytest.fixture
def tunnelwall_factory(request):
    """Call it to bring up a testbed: ``tb = tunnelwall_factory(profile="tspu")``."""
    factory = _Factory(request.config)
    yield factory
    factory.teardown()


@pytest.fixture
def tunnelwall_testbed(request, tunnelwall_factory):
    """The testbed chosen by the test's ``@pytest.mark.tunnelwall(...)``."""
    marker = request.node.get_closest_marker("tunnelwall")
    kwargs = dict(marker.kwargs) if marker else {}
    return tunnelwall_factory(**kwargs)
