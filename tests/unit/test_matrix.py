"""Shards of a verify matrix, and their merge (harness.matrix)."""

import json

import pytest

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.harness import matrix, stats
from tunnelwall.harness.runner import ToolResult

PROFILES, TOOLS, TRIALS = ["log-only", "gfw-2025"], ["https", "wireguard", "shadowsocks"], 3
META = {"profiles": PROFILES, "tools": TOOLS, "trials": TRIALS, "topology": "isp", "bytes": 1000, "seed": 7,
        "overrides": [], "placement": None, "ipv6": False, "requests": None}


def outcome_of(cell):
    # A deterministic censor: gfw-2025 blocks wireguard, and shadowsocks in odd trials.
    if cell.profile == "gfw-2025" and (cell.tool == "wireguard" or (cell.tool == "shadowsocks" and cell.trial % 2)):
        return "BLOCKED"
    return "PASSED"


def document(cells, shard=None):
    results = [ToolResult(tool=c.tool, profile=c.profile, outcome=outcome_of(c), trial=c.trial, cell=c.index,
                          bytes_expected=1000, bytes_through=0 if outcome_of(c) == "BLOCKED" else 1000).as_dict()
               for c in cells]
    meta = {"started": "2026-11-30 04:00:00", "matrix": META, "elapsed_s": 10.0 * len(cells)}
    if shard:
        meta["shard"] = shard
    return json.loads(json.dumps({"schema": matrix.SCHEMA, "meta": meta, "results": results}))


def test_cells_are_numbered_profile_then_tool_then_trial():
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    assert len(cells) == 18 and [c.index for c in cells] == list(range(18))
    assert (cells[0].profile, cells[0].tool, cells[0].trial) == ("log-only", "https", 1)
    assert (cells[4].profile, cells[4].tool, cells[4].trial) == ("log-only", "wireguard", 2)
    assert (cells[17].profile, cells[17].tool, cells[17].trial) == ("gfw-2025", "shadowsocks", 3)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 18, 25])
def test_shards_partition_the_matrix(n):
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    parts = [matrix.shard(cells, k, n) for k in range(1, n + 1)]
    flat = sorted(c.index for part in parts for c in part)
    assert flat == list(range(len(cells)))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1      # balanced


def test_merge_of_shards_equals_the_unsharded_run():
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    whole = document(cells)
    shards = [(f"s{k}.json", document(matrix.shard(cells, k, 3), f"{k}/3")) for k in (3, 1, 2)]
    merged = matrix.merge(shards)
    assert merged["results"] == whole["results"]
    rates = {(s["profile"], s["tool"]): (s["blocked"], s["trials"], s["ci95"]) for s in merged["summary"]}
    assert rates[("gfw-2025", "wireguard")][:2] == (3, 3)
    assert rates[("gfw-2025", "shadowsocks")][:2] == (2, 3)     # trials 1 and 3
    assert rates[("log-only", "wireguard")][:2] == (0, 3)
    assert rates[("gfw-2025", "shadowsocks")][2] == [round(x, 4) for x in stats.wilson(2, 3)]
    assert merged["meta"]["elapsed_s"] == 180.0 and merged["meta"]["merged_from"] == 3
    assert "shard" not in merged["meta"]


def test_merge_refuses_what_does_not_fit():
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    a, b = document(matrix.shard(cells, 1, 2), "1/2"), document(matrix.shard(cells, 2, 2), "2/2")
    with pytest.raises(TunnelwallError, match=r"merge: 9 of 18 cells missing, e\.g\. cell 1 "):
        matrix.merge([("a.json", a)])
    with pytest.raises(TunnelwallError, match=r"^b\.json: cell 0 \(log-only/https trial 1\) is also in a\.json$"):
        matrix.merge([("a.json", a), ("b.json", a)])
    other = json.loads(json.dumps(b))
    other["meta"]["matrix"]["seed"] = 8
    with pytest.raises(TunnelwallError, match=r"^b\.json: not the same matrix as a\.json \(differs in: seed\)$"):
        matrix.merge([("a.json", a), ("b.json", other)])
    lying = json.loads(json.dumps(b))
    lying["results"][0]["tool"] = "obfs4"
    with pytest.raises(TunnelwallError, match=r"^b\.json: result 1 says log-only/obfs4 trial 2, but cell 1 is "
                                              r"log-only/https trial 2$"):
        matrix.merge([("a.json", a), ("b.json", lying)])
    with pytest.raises(TunnelwallError, match=r"^old\.json: its meta has no 'matrix'"):
        matrix.merge([("old.json", {"schema": matrix.SCHEMA, "meta": {}, "results": []})])


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "", "1/0"])
def test_bad_shard_argument(text):
    with pytest.raises(TunnelwallError, match="--shard"):
        matrix.parse_shard(text)


def test_merge_verb_writes_one_file(tmp_path):
    import subprocess
    import sys
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    paths = []
    for k in (1, 2):
        p = tmp_path / f"shard{k}.json"
        p.write_text(json.dumps(document(matrix.shard(cells, k, 2), f"{k}/2")))
        paths.append(str(p))
    out = tmp_path / "all.json"
    res = subprocess.run([sys.executable, "-m", "tunnelwall", "merge", *paths, "-o", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["results"] == document(cells)["results"]
    bad = subprocess.run([sys.executable, "-m", "tunnelwall", "merge", paths[0]], capture_output=True, text=True)
    assert bad.returncode != 0 and "cells missing" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_results_documents_follow_their_schema():
    """What verify writes validates against results.schema.json; a wrong
    field is one line naming the file and the field."""
    cells = matrix.cells(PROFILES, TOOLS, TRIALS)
    doc = document(cells)
    doc["summary"] = stats.summarize([ToolResult(**r) for r in doc["results"]], 60.0)
    matrix.check("ok.json", doc)
    bad = json.loads(json.dumps(doc))
    bad["results"][4]["outcome"] = "MAYBE"
    with pytest.raises(TunnelwallError, match=r"^bad\.json: results\.4\.outcome: 'MAYBE' is not one of"):
        matrix.check("bad.json", bad)
    with pytest.raises(TunnelwallError, match=r"^old\.json: not a results file .*it says 'tunnelwall-results/1'"):
        matrix.check("old.json", {**doc, "schema": "tunnelwall-results/1"})
