"""``tunnelwall verify``: each profile's censor against each tool."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness import matrix, spec as specs
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
    inner: str = "https"            # what goes through each tool: HTTPS (default) or plain HTTP (runner.RunOptions)
    shard: tuple[int, int] | None = None   # (K, N): run only the K-th of N interleaved parts
    scope: str | None = None        # run scope of the testbeds (None: the first free one, so runs coexist)
    only_cells: list[int] | None = None    # run only these cell numbers (a cluster task's part)

    def matrix_meta(self) -> dict:
        """What defines the matrix: shards of one matrix agree on all of it."""
        return {"profiles": list(self.profiles), "tools": list(self.tools), "trials": self.trials,
                "topology": self.topology, "bytes": self.bytes, "seed": self.seed,
                "overrides": list(self.overrides), "placement": self.placement, "ipv6": self.ipv6,
                "requests": self.requests, "inner": self.inner}

    def cells(self) -> list[matrix.Cell]:
        every = matrix.cells(self.profiles, self.tools, self.trials)
        if self.only_cells is not None:
            wanted = set(self.only_cells)
            return [c for c in every if c.index in wanted]
        return matrix.shard(every, *self.shard) if self.shard else every


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def verify(opts: VerifyOptions, say=progress) -> list[ToolResult]:
    """Run the matrix (or the shard of it *opts* names) and return one
    result per cell. SIGTERM tears the current testbed down like Ctrl-C."""
    from tunnelwall.base import procs
    with procs.signals_as_interrupts():
        return _verify(opts, say)


def _verify(opts: VerifyOptions, say) -> list[ToolResult]:
    from tunnelwall.runtime.network import UpOptions, down, up
    tool_specs = [specs.load(t) for t in opts.tools]       # all errors before any network exists
    from tunnelwall.middlebox import profiles
    for p in opts.profiles:
        profiles.apply_overrides(profiles.load(p), opts.overrides)
    results: list[ToolResult] = []
    by_name = {t: sp for t, sp in zip(opts.tools, tool_specs)}
    todo = opts.cells()
    total = len(todo)
    n = 0
    for profile in opts.profiles:
        mine = [c for c in todo if c.profile == profile]
        if not mine:
            continue
        say(f"[{profile}] bringing up {opts.topology} ...")
        state = up(UpOptions(topology=opts.topology, profile=profile, seed=opts.seed, overrides=opts.overrides,
                             placement=opts.placement, scope=opts.scope))
        try:
            for cell in mine:
                spec = by_name[cell.tool]
                n += 1
                label = f"{spec.name}" + (f" trial {cell.trial}/{opts.trials}" if opts.trials > 1 else "")
                say(f"[{n}/{total}] {profile}: {label} ...")
                t0 = time.monotonic()
                result = run_tool(state, spec, RunOptions(bytes=opts.bytes, ipv6=opts.ipv6,
                                                          requests=opts.requests, inner=opts.inner))
                result.trial, result.cell = cell.trial, cell.index
                detail = f"rule {result.rule}, packet {result.packets_to_detection}" if result.rule else \
                    (result.error if result.outcome == ERROR else "")
                say(f"[{n}/{total}] {profile}: {label}: {result.outcome}"
                    f"{' (' + detail + ')' if detail else ''} in {time.monotonic() - t0:.1f}s")
                results.append(result)
                _post_result(state, result)
                if opts.trials > 1 and not opts.keep_residual:
                    _clear_blocks(state)
        finally:
            down(state)
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


def child_argv(opts: VerifyOptions, shard: tuple[int, int] | None = None, cells: list[int] | None = None,
               python: str = sys.executable) -> list[str]:
    """The command line of a ``verify`` that runs *shard* (or the *cells*)
    of the same matrix (``--jobs``: each job is such a process, with a
    testbed of its own; ``--cluster``: each task runs one)."""
    argv = [python, "-m", "tunnelwall", "verify", "--profile", ",".join(opts.profiles),
            "--tools", ",".join(opts.tools), "--topology", opts.topology, "--bytes", str(opts.bytes),
            "--trials", str(opts.trials), "--format", "json"]
    if shard:
        argv += ["--shard", f"{shard[0]}/{shard[1]}"]
    if cells is not None:
        argv += ["--cells", ",".join(map(str, cells))]
    if opts.seed is not None:
        argv += ["--seed", str(opts.seed)]
    for o in opts.overrides:
        argv += ["--set", o]
    if opts.placement:
        argv += ["--placement", opts.placement]
    if opts.ipv6:
        argv.append("--ipv6")
    if opts.keep_residual:
        argv.append("--keep-residual")
    if opts.requests is not None:
        argv += ["--requests", str(opts.requests)]
    if opts.inner != "https":
        argv += ["--inner", opts.inner]
    return argv


def verify_jobs(opts: VerifyOptions, jobs: int, say=progress) -> dict:
    """Run the matrix (or its shard) as *jobs* processes side by side, each
    on testbeds of its own scope, and merge what they return into one
    results document. Their progress lines are passed on, prefixed."""
    import subprocess
    import tempfile
    import threading
    k, n = opts.shard or (1, 1)
    every = matrix.cells(opts.profiles, opts.tools, opts.trials)
    parts = [p for p in (matrix.sub_shard(k, n, j, jobs) for j in range(1, jobs + 1)) if matrix.shard(every, *p)]
    outputs, procs_, relays = [], [], []
    with tempfile.TemporaryDirectory(prefix="tunnelwall-jobs-") as tmp:
        try:
            for j, part in enumerate(parts, start=1):
                out = open(f"{tmp}/job{j}.json", "w+")
                outputs.append(out)
                proc = subprocess.Popen(child_argv(opts, part), stdout=out, stderr=subprocess.PIPE, text=True)
                procs_.append(proc)
                relay = threading.Thread(target=_relay, args=(proc.stderr, f"[job {j}/{len(parts)}] ", say),
                                         daemon=True)
                relay.start()
                relays.append(relay)
            for proc in procs_:
                proc.wait()
        finally:
            for proc in procs_:
                if proc.poll() is None:
                    proc.terminate()      # each job tears its own testbed down on SIGTERM
                    proc.wait()
            for relay in relays:
                relay.join(timeout=5)
        docs = []
        for j, (out, proc) in enumerate(zip(outputs, procs_), start=1):
            out.seek(0)
            text = out.read()
            out.close()
            try:
                docs.append((f"job {j}", json.loads(text)))
            except ValueError:
                raise TunnelwallError(f"verify --jobs: job {j} returned no results (exit {proc.returncode}); "
                                      f"its progress lines above say why") from None
    return matrix.merge(docs, shard_of=opts.shard)


def _relay(stream, prefix: str, say) -> None:
    for line in stream:
        say(prefix + line.rstrip("\n"))
