"""``tunnelwall verify``: each profile's censor against each tool."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness import spec as specs
from tunnelwall.harness.runner import ERROR, RunOptions, ToolResult, run_tool

DEFAULT_TOOLS = ["https", "openvpn-udp", "openvpn-tcp", "openvpn-tls-crypt", "wireguard", "shadowsocks", "obfs4",
                 "stunnel", "stunnel-https", "ssh", "v2ray-vmess"]


@dataclass
class VerifyOptions:
    profiles: list[str] = field(default_factory=lambda: ["gfw"])
    tools: list[str] = field(default_factory=lambda: list(DEFAULT_TOOLS))
    topology: str = "isp"
    bytes: int = 2_000_000
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    placement: str | None = None
    ipv6: bool = False              # reach the servers by their IPv6 addresses
    trials: int = 1                 # runs of each tool, on the same testbed
    keep_residual: bool = False     # keep residual blocks from one trial to the next
    requests: int | None = None     # override each tool's traffic.requests

def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def verify(opts: VerifyOptions, say=progress) -> list[ToolResult]:
    from tunnelwall.runtime.network import UpOptions, down, up
    tool_specs = [specs.load(t) for t in opts.tools]       # all errors before any network exists
    from tunnelwall.middlebox import profiles
    for p in opts.profiles:
        profiles.apply_overrides(profiles.load(p), opts.overrides)
    results: list[ToolResult] = []
    total = len(opts.profiles) * len(tool_specs) * opts.trials
    n = 0
    for profile in opts.profiles:
        say(f"[{profile}] bringing up {opts.topology} ...")
        state = up(UpOptions(topology=opts.topology, profile=profile, seed=opts.seed, overrides=opts.overrides,
                             placement=opts.placement))
        try:
            for spec in tool_specs:
                for trial in range(1, opts.trials + 1):
                    n += 1
                    label = f"{spec.name}" + (f" trial {trial}/{opts.trials}" if opts.trials > 1 else "")
                    say(f"[{n}/{total}] {profile}: {label} ...")
                    t0 = time.monotonic()
                    result = run_tool(state, spec, RunOptions(bytes=opts.bytes, ipv6=opts.ipv6,
                                                              requests=opts.requests))
                    result.trial = trial
                    detail = f"rule {result.rule}, packet {result.packets_to_detection}" if result.rule else \
                        (result.error if result.outcome == ERROR else "")
                    say(f"[{n}/{total}] {profile}: {label}: {result.outcome}"
                        f"{' (' + detail + ')' if detail else ''} in {time.monotonic() - t0:.1f}s")
                    results.append(result)
                    _post_result(state, result)
                    if opts.trials > 1 and not opts.keep_residual:
                        _clear_blocks(state)
        finally:
            down()
    return results


def _clear_blocks(state) -> None:
    """Between trials: a fresh censor's memory, so trials are independent."""
    from tunnelwall.runtime.api import Api
    if state.api:
        Api(state).clear_blocks()


def _post_result(state, result: ToolResult) -> None:
    """Show the result in the live view (best effort: the matrix does not depend on it)."""
    from tunnelwall.runtime.api import Api
    try:
        Api(state).call("/api/results", {"result": {k: v for k, v in result.as_dict().items()
                                                    if k not in ("verdicts", "log")}})
    except TunnelwallError:
        pass
