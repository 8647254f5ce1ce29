"""``tunnelwall verify``: each profile's censor against each tool."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness import matrix, spec as specs
from tunnelwall.harness.runner import ERROR, RunOptions, ToolResult, run_tool

DEFAULT_TOOLS = ["https", "openvpn-udp", "openvpn-tcp", "openvpn-tls-crypt", "wireguard", "shadowsocks", "obfs4",
                 "stunnel", "stunnel-https", "ssh", "v2ray-vmess"]


@dataclass
class VerifyOptions:
    """The matrix and how to run it. ``profiles`` and ``tools`` are the names
    the results carry (a profile's ``name``, a tool's ``name``); what was
    given for them where that differs (an alias such as ``gfw``, a path) is
    in ``profile_given`` / ``tool_given``: :func:`resolve` fills them, once,
    at the edge, and everything after it (cells, expectations, merge,
    compare, jobs, the cluster, reports) uses the names."""
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
    profile_given: dict[str, str] = field(default_factory=dict)   # name -> alias or path it was given as
    tool_given: dict[str, str] = field(default_factory=dict)      # name -> path it was given as

    def matrix_meta(self) -> dict:
        """What defines the matrix: shards of one matrix agree on all of it."""
        return {"profiles": list(self.profiles), "tools": list(self.tools), "trials": self.trials,
                "topology": self.topology, "bytes": self.bytes, "seed": self.seed,
                "overrides": list(self.overrides), "placement": self.placement, "ipv6": self.ipv6,
                "requests": self.requests, "inner": self.inner, "profile_given": dict(self.profile_given),
                "tool_given": dict(self.tool_given)}

    def cells(self) -> list[matrix.Cell]:
        every = matrix.cells(self.profiles, self.tools, self.trials)
        if self.only_cells is not None:
            wanted = set(self.only_cells)
            return [c for c in every if c.index in wanted]
        return matrix.shard(every, *self.shard) if self.shard else every

    def profile_source(self, name: str) -> str:
        """What to load for profile *name* (its alias or path, or the name)."""
        return self.profile_given.get(name, name)

    def tool_source(self, name: str) -> str:
        return self.tool_given.get(name, name)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VerifyOptions":
        """Options back from :meth:`as_dict` (a child process's)."""
        opts = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        if opts.shard is not None:
            opts.shard = (int(opts.shard[0]), int(opts.shard[1]))
        return opts


def resolve(opts: VerifyOptions) -> VerifyOptions:
    """*opts* with every profile and tool under the name its results will
    carry, and what was given for it recorded beside the name. Loads each
    once (so a bad file or name is an error before anything runs); the same
    profile or tool twice (``gfw`` and ``gfw-2025``) is an error. Idempotent."""
    from tunnelwall.middlebox import profiles
    profile_names: list[str] = []
    profile_given: dict[str, str] = {}
    typed: dict[str, str] = {}            # name -> what was given for it, for the duplicate's message
    for p in opts.profiles:
        given = opts.profile_source(p)
        prof = profiles.apply_overrides(profiles.load(given), opts.overrides)
        if prof.name in typed:
            raise TunnelwallError(f"--profile: '{given}' is profile '{prof.name}', which is already in the matrix "
                                  f"(as '{typed[prof.name]}')")
        typed[prof.name] = given
        profile_names.append(prof.name)
        if given != prof.name:
            profile_given[prof.name] = given
    tool_names: list[str] = []
    tool_given: dict[str, str] = {}
    for t in opts.tools:
        given = opts.tool_source(t)
        spec = specs.load(given)
        if spec.name in tool_names:
            raise TunnelwallError(f"--tools: '{given}' is tool '{spec.name}', which is already in the matrix")
        tool_names.append(spec.name)
        if given != spec.name:
            tool_given[spec.name] = given
    return replace(opts, profiles=profile_names, tools=tool_names, profile_given=profile_given,
                   tool_given=tool_given)


def alias_lines(opts: VerifyOptions, today=None) -> list[str]:
    """One line per profile given by an alias (``gfw``): what it stands for,
    its period, and whether that period is over."""
    import datetime

    from tunnelwall.middlebox import profiles
    from tunnelwall.middlebox.profiles import periods
    today = today or datetime.date.today()
    out = []
    for name, given in opts.profile_given.items():
        if given in profiles.ALIASES:
            p = profiles.load(name)
            status = periods.status(p.period, today)
            note = " (its period is over: no newer profile of this censor exists yet)" \
                if status == periods.HISTORICAL else ""
            out.append(f"profile {given} = {name}, period {p.period or '-'}: {status}{note}")
    return out


def provenance(opts: VerifyOptions):
    """The :class:`~tunnelwall.harness.provenance.Provenance` of a run of *opts* on this machine."""
    from tunnelwall import __version__
    from tunnelwall.harness import provenance as prov
    from tunnelwall.middlebox import profiles
    commit, dirty = prov.git_commit()
    datapath, conditions = prov.machine()
    profile_sources = []
    for name in opts.profiles:
        p = profiles.apply_overrides(profiles.load(opts.profile_source(name)), opts.overrides)
        profile_sources.append(prov.ProfileSource(
            name=name, given=opts.profile_source(name), file=p.source, sha256=prov.sha256_of(p.source),
            period=p.period, seed=p.seed if opts.seed is None else opts.seed))
    tool_sources = []
    for name in opts.tools:
        spec = specs.load(opts.tool_source(name))
        tool_sources.append(prov.SourceFile(name=name, given=opts.tool_source(name), file=spec.source,
                                            sha256=prov.sha256_of(spec.source)))
    return prov.Provenance(tunnelwall=__version__, commit=commit, dirty=dirty, datapath=datapath,
                           link_conditions=conditions, profiles=profile_sources, tools=tool_sources)


def document(results: list[ToolResult], opts: VerifyOptions, started: str, elapsed: float, jobs: int = 1,
             cluster: str | None = None) -> dict:
    """The results document (results.schema.json) of a run of *opts*."""
    from tunnelwall.harness import stats
    summary = stats.summarize(results, elapsed) if opts.trials > 1 else None
    meta = {"started": started, "topology": opts.topology, "profiles": ",".join(opts.profiles),
            "family": "IPv6" if opts.ipv6 else "IPv4",
            "bytes": opts.bytes, "seed": opts.seed, "overrides": " ".join(opts.overrides) or "-",
            "matrix": opts.matrix_meta(), "elapsed_s": round(elapsed, 1), "jobs": jobs,
            "provenance": provenance(opts).as_dict()}
    if cluster:
        meta["cluster"] = cluster
    if opts.shard:
        meta["shard"] = f"{opts.shard[0]}/{opts.shard[1]}"
    if summary:
        meta["trials"] = opts.trials
    out = {"schema": matrix.SCHEMA, "meta": meta, "results": [r.as_dict() for r in results]}
    if summary:
        out["summary"] = summary
    return out


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
    opts = resolve(opts)                                    # all errors before any network exists
    tool_specs = [specs.load(opts.tool_source(t)) for t in opts.tools]
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
        state = up(UpOptions(topology=opts.topology, profile=opts.profile_source(profile), seed=opts.seed,
                             overrides=opts.overrides,
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
    """The command line of a child process that runs *shard* (or the
    *cells*) of the same matrix with :func:`verify` and prints its results
    document (``--jobs``: each job is such a process, with a testbed of its
    own; ``--cluster``: each task runs one). The runner as a library
    (:mod:`tunnelwall.harness.child`), not the command line above it."""
    part = replace(opts, shard=shard, only_cells=cells, scope=None)
    return [python, "-m", "tunnelwall.harness.child", json.dumps(part.as_dict())]


def verify_jobs(opts: VerifyOptions, jobs: int, say=progress) -> dict:
    """Run the matrix (or its shard) as *jobs* processes side by side, each
    on testbeds of its own scope, and merge what they return into one
    results document. Their progress lines are passed on, prefixed."""
    import subprocess
    import tempfile
    import threading
    opts = resolve(opts)
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
