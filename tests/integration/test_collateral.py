"""Issue 16, in part: collateral damage. Russia's 2021 Twitter throttling
matched SNIs with the loose glob *t.co* and slowed microsoft.com and
reddit.com too (Xue et al., IMC 2021); the benign traffic mix shows it."""

from __future__ import annotations

import json

from conftest import assert_nothing_left, tw


def test_tspu_2021_throttles_ordinary_sites_by_its_loose_glob():
    out = json.loads(tw("collateral", "--profile", "tspu-2021", "--connections", "45", "--format", "json",
                        timeout=600).stdout)
    rows = {(r["class"], r["outcome"]): r for r in out["summary"]}
    throttled = rows[("https", "throttled")]
    assert throttled["names"] == ["www.microsoft.com", "www.reddit.com"] and throttled["connections"] == 15
    assert throttled["ci95"][0] < throttled["rate"] < throttled["ci95"][1]
    for kind in ("https", "http", "dns"):
        assert rows[(kind, "blocked")]["hits"] == 0
    assert all(a["outcome"] == "ok" for a in out["attempts"] if a["kind"] != "https")
    assert_nothing_left()
