"""Issue 16: the testbed as a measurement instrument. Shadowsocks under the
FET-era GFW, many trials, one connection each: the block rate must agree
with the published 26.3 % (Wu et al., USENIX Security 2023)."""

from __future__ import annotations

import json

from conftest import assert_nothing_left, tw

from tunnelwall.harness.stats import wilson

PUBLISHED = 0.263
TRIALS = 40          # the README gives the N = 200 figure; 40 keeps CI short, with a 99 % interval


def test_fet_block_rate_reproduces_the_published_figure(tmp_path):
    res = tw("verify", "--profile", "gfw-2022", "--tools", "shadowsocks", "--trials", str(TRIALS), "--requests", "1",
             "--bytes", "20000", "--set", "fet.residual=0", "--set", "fet-probe.action=log", "--format", "json",
             "--report", str(tmp_path), timeout=900)
    out = json.loads(res.stdout)
    assert out["schema"] == "tunnelwall-results/2" and len(out["results"]) == TRIALS
    (row,) = out["summary"]
    assert row["trials"] == TRIALS and row["errors"] == 0
    # Every trial is one connection and at most one draw: blocked by the FET rule,
    # spared and logged (fet-probe), or exempt (about 1.3 % of random first
    # packets look printable enough: Ex2/Ex3) and allowed without a rule.
    for r in out["results"]:
        rules = [v["rule"] for v in r["verdicts"]]
        assert rules in (["fet"], ["fet-probe"], [None]), rules
        assert (r["outcome"] == "BLOCKED") == (rules == ["fet"])
    lo, hi = wilson(row["blocked"], row["trials"], z=2.576)
    assert lo <= PUBLISHED <= hi, (row, lo, hi)
    assert 0 < row["blocked"] < TRIALS
    assert json.loads((tmp_path / "results.json").read_text())["summary"] == out["summary"]
    assert_nothing_left()
