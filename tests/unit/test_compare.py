"""tunnelwall compare: outcome and block-rate changes between two runs."""

import json

import pytest

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.cli.main import main
from tunnelwall.harness.compare import compare, load
from tunnelwall.harness.runner import ToolResult


def run(tool, outcome, profile="gfw"):
    return ToolResult(tool=tool, profile=profile, outcome=outcome).as_dict()


def document(results):
    """A results file as verify writes it (tunnelwall-results/2)."""
    return {"schema": "tunnelwall-results/2", "meta": {}, "results": results}


def test_single_runs_compare_outcomes():
    old = {"results": [run("wg", "BLOCKED"), run("ss", "PASSED"), run("ssh", "PASSED"), run("gone", "PASSED")]}
    new = {"results": [run("wg", "PASSED"), run("ss", "BLOCKED"), run("ssh", "ERROR"), run("new", "PASSED")]}
    changes = {r["tool"]: r["change"] for r in compare(old, new)}
    assert changes == {"wg": "improvement", "ss": "regression", "ssh": "regression (the tool now fails)",
                       "gone": "removed", "new": "added"}


def summary(rate, lo, hi, n=200):
    return {"summary": [{"profile": "gfw-2022", "tool": "ss", "trials": n, "block_rate": rate, "ci95": [lo, hi],
                         "blocked": int(rate * n), "errors": 0}], "results": []}


@pytest.mark.parametrize("new,change", [(summary(0.30, 0.24, 0.37), "same (intervals overlap)"),
                                        (summary(0.60, 0.53, 0.66), "regression"),
                                        (summary(0.05, 0.03, 0.09), "improvement")])
def test_trials_compare_intervals(new, change):
    (row,) = compare(summary(0.26, 0.20, 0.33), new)
    assert row["change"] == change


def test_cli_exit_code_and_bad_files(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(document([run("ss", "PASSED")])))
    b.write_text(json.dumps(document([run("ss", "BLOCKED")])))
    assert main(["compare", str(a), str(b)]) == 1
    assert main(["compare", str(b), str(a)]) == 0
    assert "improvement" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TunnelwallError, match="not a results file"):
        load(tmp_path / "bad.json")
    assert main(["compare", str(tmp_path / "bad.json"), str(a)]) == 2
