"""Issue 29: a tool author's CI, for real. The README's recipe
(examples/ci/github-actions.yml) is run as GitHub Actions would run it: its
``run:`` steps' commands in order, in a workspace laid out as its
``uses:`` steps leave it, twice (a push to main that makes the baseline,
then a pull request compared against it). And the measured failure of
``verify --profile gfw --jobs 2`` with an expectation by alias."""

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import yaml

from conftest import ROOT, assert_nothing_left, tw

WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
MAIN = "refs/heads/main"
# What the workflow's `uses:` steps do, done here: the two checkouts are the
# workspace's tunnelwall/ and mytool/, the cache keeps baseline/ between runs
# (the workspace is kept), the artifact upload only reads report/.
SIMULATED = {"actions/checkout", "actions/cache/restore", "actions/cache/save", "actions/upload-artifact"}


def should_run(condition, failed: bool, ref: str) -> bool:
    """GitHub's step conditions, the ones the recipe uses."""
    if condition is None:
        return not failed
    if condition == "always()":
        return True
    if condition == "github.ref == 'refs/heads/main'":
        return not failed and ref == MAIN
    raise AssertionError(f"the test does not know the step condition {condition!r}: teach it")


def run_workflow(workspace, ref: str) -> list[tuple[str, subprocess.CompletedProcess]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    env = {**os.environ, **{k: str(v) for k, v in job.get("env", {}).items()}, "GITHUB_REF": ref, "CI": "true"}
    done, failed = [], False
    for step in job["steps"]:
        if "uses" in step:
            assert step["uses"].split("@")[0] in SIMULATED, step
            continue
        if not should_run(step.get("if"), failed, ref):
            continue
        assert "${{" not in step["run"], "run: steps take no expressions, so they run the same here"
        # GitHub's default shell for run: steps.
        res = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=workspace,
                             env=env, capture_output=True, text=True, timeout=900)
        done.append((step.get("name", step["run"][:40]), res))
        failed = failed or res.returncode != 0
    return done


def test_the_readme_ci_recipe_runs_as_written_and_keeps_its_baseline(tmp_path):
    ws = tmp_path / "workspace"
    (ws / "mytool" / "tunnelwall").mkdir(parents=True)
    (ws / "tunnelwall").symlink_to(ROOT)
    shutil.copy(ROOT / "examples" / "my-tls-tunnel.yaml", ws / "mytool" / "tunnelwall" / "my-tls-tunnel.yaml")

    first = run_workflow(ws, MAIN)
    for name, res in first:
        assert res.returncode == 0, f"step '{name}' exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    steps = dict(first)
    assert list(steps) == ["set up tunnelwall", "check the tool definition", "verify", "compare with the baseline",
                           "keep this run as the baseline"]
    assert "no baseline yet" in steps["compare with the baseline"].stdout
    baseline = json.loads((ws / "baseline" / "results.json").read_text())
    outcomes = {(r["profile"], r["tool"]): r["outcome"] for r in baseline["results"]}
    assert outcomes == {("gfw-2025", "my-tls-tunnel"): "PASSED", ("gfw-2025", "wireguard"): "BLOCKED",
                        ("gfw-2022", "my-tls-tunnel"): "PASSED", ("gfw-2022", "wireguard"): "BLOCKED"}
    assert baseline["meta"]["provenance"]["tools"][0]["given"] == "mytool/tunnelwall/my-tls-tunnel.yaml"
    junit = ET.parse(ws / "report" / "junit.xml").getroot()
    assert sum(int(s.get("failures")) + int(s.get("errors")) for s in junit.iter("testsuite")) == 0
    kept = (ws / "baseline" / "results.json").read_text()

    # A pull request: compared with the baseline main made, which it leaves alone.
    second = dict(run_workflow(ws, "refs/pull/7/merge"))
    assert list(second) == ["set up tunnelwall", "check the tool definition", "verify", "compare with the baseline"]
    assert all(res.returncode == 0 for res in second.values()), {n: r.stderr for n, r in second.items()}
    compared = second["compare with the baseline"].stdout
    assert compared.count("same") == 4 and "no baseline" not in compared
    assert (ws / "baseline" / "results.json").read_text() == kept
    assert_nothing_left()


def test_jobs_with_the_gfw_alias_and_an_expectation_by_alias(tmp_path):
    """Measured: `verify --profile gfw --tools https,wireguard --jobs 2` ran
    every cell, then failed to merge them (exit 2), and `--expect
    gfw/wireguard=PASSED` was never checked against gfw-2025's BLOCKED."""
    res = tw("verify", "--profile", "gfw", "--tools", "https,wireguard", "--jobs", "2", "--bytes", "200000",
             "--expect", "gfw/wireguard=PASSED", "--expect", "https=PASSED", "--report", str(tmp_path),
             check=False, timeout=600)
    assert res.returncode == 1, res.stderr
    assert "expectation not met: gfw-2025/wireguard: expected PASSED, got BLOCKED" in res.stderr
    assert "profile gfw = gfw-2025" in res.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [(r["profile"], r["tool"], r["outcome"]) for r in doc["results"]] == [
        ("gfw-2025", "https", "PASSED"), ("gfw-2025", "wireguard", "BLOCKED")]
    assert doc["meta"]["matrix"]["profile_given"] == {"gfw-2025": "gfw"} and doc["meta"]["jobs"] == 2
    (profile,) = doc["meta"]["provenance"]["profiles"]
    assert profile["name"] == "gfw-2025" and profile["given"] == "gfw" and isinstance(profile["seed"], int)
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failed = [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None]
    assert failed == ["wireguard"]
    assert_nothing_left()
