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
torn down after each test, whatever happens in it. Without root a test is
skipped, except in CI (``$CI`` set, as every CI service sets it): there it
fails, saying why, so a job that forgot root cannot be green.

A probabilistic rule makes one run a coin flip: ``run_tool(tool,
trials=20)`` runs it 20 times (censor memory cleared between trials) and
returns rates with 95 % intervals::

    runs = tunnelwall_testbed.run_tool("shadowsocks", trials=20)
    assert runs.blocked.high < 0.5, str(runs.blocked)

Each result is also attached to the test's JUnit entry as properties
(``tunnelwall.TOOL.outcome``, ``.rule``, ``.blocked``: what pytest's
``record_property`` does), so ``pytest --junitxml`` carries them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    record: Callable[[str, object], None] | None = None    # the test's record_property

    @property
    def profile(self) -> str | None:
        return self.state.profile

    def run_tool(self, tool, bytes: int = 2_000_000, client: str | None = None, server: str | None = None,
                 trials: int = 1):
        """Run a tool (built-in name, YAML path or ToolSpec) and return its
        ToolResult; with *trials* > 1, run it that many times (the censor's
        blocks and memory cleared between trials, so they are independent)
        and return a :class:`~tunnelwall.harness.stats.TrialResults`."""
        from tunnelwall.harness import runner
        from tunnelwall.harness.spec import ToolSpec, load
        from tunnelwall.harness.stats import TrialResults
        if trials < 1:
            raise ValueError("run_tool: trials is at least 1")
        spec = tool if isinstance(tool, ToolSpec) else load(str(tool))
        opts = runner.RunOptions(bytes=bytes, client_node=client, server_node=server)
        if trials == 1:
            result = runner.run_tool(self.state, spec, opts)
            self._record(spec.name, outcome=result.outcome, rule=result.rule or "",
                         detection_packet=result.packets_to_detection or "")
            return result
        runs = TrialResults(tool=spec.name, profile=self.state.profile)
        for trial in range(1, trials + 1):
            if trial > 1:
                self._clear_blocks()
            result = runner.run_tool(self.state, spec, opts)
            result.trial = trial
            runs.results.append(result)
        self._record(spec.name, trials=trials, blocked=str(runs.blocked), passed=str(runs.passed),
                     errors=runs.errors)
        return runs

    def _record(self, tool: str, **values) -> None:
        if self.record is not None:
            for key, value in values.items():
                self.record(f"tunnelwall.{tool}.{key}", value)

    def _clear_blocks(self) -> None:
        from tunnelwall.runtime.api import Api
        if self.state.api:
            Api(self.state).clear_blocks()

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


NEEDS_ROOT = "tunnelwall testbeds need root (network namespaces and Open vSwitch)"


class _Factory:
    def __init__(self, config, record=None):
        self.config = config
        self.record = record
        self.running: list[RunState] = []

    def __call__(self, profile: str | None = None, topology: str | None = None, overrides=None, seed=None,
                 placement=None) -> Testbed:
        from tunnelwall.runtime.network import UpOptions, require_root, up
        if os.geteuid() != 0:
            if os.environ.get("CI"):
                # A CI job that forgot root would otherwise be green with every test skipped.
                pytest.fail(f"{NEEDS_ROOT}; $CI is set, so this fails instead of skipping: run the job as root "
                            f"(sudo), or unset CI to skip", pytrace=False)
            pytest.skip(NEEDS_ROOT)
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
        return Testbed(state, record=self.record)

    def teardown(self) -> None:
        from tunnelwall.runtime.cleanup import teardown
        while self.running:
            teardown(self.running.pop())


@pytest.fixture
def tunnelwall_factory(request):
    """Call it to bring up a testbed: ``tb = tunnelwall_factory(profile="tspu")``."""
    factory = _Factory(request.config, record=lambda name, value: request.node.user_properties.append((name, value)))
    yield factory
    factory.teardown()


@pytest.fixture
def tunnelwall_testbed(request, tunnelwall_factory):
    """The testbed chosen by the test's ``@pytest.mark.tunnelwall(...)``."""
    marker = request.node.get_closest_marker("tunnelwall")
    kwargs = dict(marker.kwargs) if marker else {}
    return tunnelwall_factory(**kwargs)
