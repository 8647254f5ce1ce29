"""Block rates with Wilson intervals over trials (harness/stats.py)."""

import pytest

from tunnelwall.harness.runner import BLOCKED, ERROR, PASSED, ToolResult
from tunnelwall.harness.stats import summarize, wilson


@pytest.mark.parametrize("k,n,lo,hi", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
                                       (53, 200, 0.2087, 0.3302)])
def test_wilson_interval_matches_the_formula(k, n, lo, hi):
    got = wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-4)


def test_wilson_narrows_with_n_and_always_holds_the_point_estimate():
    widths = [wilson(n // 4, n)[1] - wilson(n // 4, n)[0] for n in (20, 80, 320)]
    assert widths[0] > widths[1] > widths[2]
    for k in range(0, 21):
        lo, hi = wilson(k, 20)
        assert lo <= k / 20 <= hi


def result(outcome, packet=None, mbit=0.0):
    return ToolResult(tool="ss", profile="gfw-2022", outcome=outcome, packets_to_detection=packet,
                      ms_to_detection=1.0 if packet else None, mbit_s=mbit)


def test_summary_counts_blocked_trials_and_leaves_errors_out():
    runs = [result(BLOCKED, 4), result(BLOCKED, 5), result(PASSED, mbit=100.0), result(PASSED, mbit=200.0),
            result(ERROR)]
    (row,) = summarize(runs, seconds=60)
    assert (row["trials"], row["errors"], row["blocked"], row["block_rate"]) == (4, 1, 2, 0.5)
    assert row["ci95"] == [round(x, 4) for x in wilson(2, 4)]
    assert row["detection_packet"] == [4, 4.5, 5] and row["mbit_s_median"] == 150.0
    assert row["trials_per_minute"] == 5.0


def test_collateral_summary_counts_outcomes_per_class_with_intervals():
    from tunnelwall.harness.collateral import Attempt, summarize as collateral_summary
    attempts = [Attempt("https", "a", "ok"), Attempt("https", "b", "throttled"), Attempt("dns", "c", "poisoned"),
                Attempt("dns", "d", "ok"), Attempt("http", "e", "ok")]
    rows = {(r["class"], r["outcome"]): r for r in collateral_summary(attempts)}
    assert rows[("https", "throttled")]["rate"] == 0.5 and rows[("https", "throttled")]["names"] == ["b"]
    assert rows[("dns", "poisoned")]["hits"] == 1 and rows[("http", "blocked")]["hits"] == 0
    assert ("https", "reset") not in rows                         # outcomes nobody had are left out


def test_judge_counts_a_shortfall_after_probing_confirmed_the_server_as_blocked():
    """A Tor client whose relay the prober confirmed while it was still
    building circuits gets nothing: the censor's block did that, so the
    outcome is BLOCKED, not a tool ERROR. Unconfirmed, the same shortfall
    with a non-blocking action stays an ERROR."""
    from tunnelwall.harness.runner import BLOCKED, ERROR, PASSED, ToolResult, judge
    confirmed = ToolResult(tool="tor", profile="gfw-2025", bytes_expected=300_000, bytes_through=0,
                           detected=True, rule="tor", action="log", confirmed_by_probing=True)
    assert judge(confirmed) == BLOCKED
    unconfirmed = ToolResult(tool="tor", profile="gfw-2025", bytes_expected=300_000, bytes_through=0,
                             detected=True, rule="tor", action="log", confirmed_by_probing=False)
    assert judge(unconfirmed) == ERROR
    # An established connection the block does not cut (new connections only) still passes.
    kept = ToolResult(tool="tor", profile="gfw-2025", bytes_expected=300_000, bytes_through=300_000,
                      detected=True, rule="tor", action="log", confirmed_by_probing=True,
                      after_probing_bytes=300_000)
    assert judge(kept) == PASSED
