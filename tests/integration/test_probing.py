"""Issue 9: active probing of real proxy servers in the testbed."""

import json

import pytest
from conftest import assert_nothing_left, tw

from tunnelwall.harness import spec
from tunnelwall.harness.runner import ToolRun
from tunnelwall.base.runstate import active_run


@pytest.fixture
def servers():
    """The isp topology (log-only) with a real ss-server and obfs4 server running."""
    tw("up", "isp", "--profile", "log-only")
    state = active_run()
    runs = []
    try:
        for name in ("shadowsocks", "obfs4"):
            run = ToolRun(state, spec.load(name))
            run.prepare()
            run.start_side("server")
            assert run.wait_ready("server"), name
            runs.append(run)
        yield state
    finally:
        for run in runs:
            run.stop()
        tw("down")
    assert_nothing_left()


def probe(target: str) -> dict:
    res = tw("probe", target, "--replay-random", "195", "--format", "json", "--timeout", "3")
    return json.loads(res.stdout)


def test_reactions_of_real_servers(servers, capsys):
    ss, obfs4, https, http = (probe(t) for t in ("198.18.0.20:8388", "198.18.0.20:9443", "198.18.0.10:443",
                                                   "198.18.0.10:80"))
    with capsys.disabled():      # the reaction table, for the record
        for r in (ss, obfs4, https, http):
            kinds = ", ".join(f"{x['probe']}={x['kind']}" + (f"({x['received']}B)" if x["received"] else "")
                              for x in r["reactions"])
            print(f"\n{r['server']}:{r['port']} -> {r['fingerprint']}: {kinds}")
    # shadowsocks-libev 3.3.5 (Debian 12) no longer closes at 50 bytes as the
    # versions Frolov et al. measured did: it stays silent, like obfs4.
    assert ss["fingerprint"] == "probe-resistant" and ss["confirmed"]
    assert all(x["kind"] == "timeout" for x in ss["reactions"])
    assert obfs4["fingerprint"] == "probe-resistant" and obfs4["confirmed"]
    assert all(x["kind"] == "timeout" for x in obfs4["reactions"])
    for normal in (https, http):
        assert normal["fingerprint"] == "normal" and not normal["confirmed"]


def test_gfw_probes_spared_fet_servers_and_blocks_confirmed_ones(tmp_path):
    tw("verify", "--profile", "gfw-2022", "--tools", "https,shadowsocks,obfs4", "--set", "fet.probability=0",
       "--report", str(tmp_path), "--expect", "https=PASSED", "--expect", "shadowsocks=BLOCKED",
       "--expect", "obfs4=BLOCKED", timeout=600)
    results = {r["tool"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    for tool, fp in (("shadowsocks", "probe-resistant"), ("obfs4", "probe-resistant")):
        r = results[tool]
        assert r["confirmed_by_probing"] is True and r["probe_fingerprint"] == fp
        assert r["bytes_through"] == r["bytes_expected"]          # the first connection went through ...
        assert r["after_probing_bytes"] < r["bytes_expected"]     # ... the next one, after probing, did not
        assert r["rule"] == "fet-probe+probe"
    assert results["https"]["confirmed_by_probing"] is None
    assert_nothing_left()
