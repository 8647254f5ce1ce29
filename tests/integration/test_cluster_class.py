"""A class over several machines (issue 20): a head and two workers on this
machine, 15 students of the classroom exercise in two groups (one testbed
each, ten student hosts per testbed) placed over both workers; the
instructor's overview shows each student's goal, follows one group's
solution, and stop removes every testbed on every worker."""

import json

import pytest

from tunnelwall.base.runstate import all_runs

from conftest import assert_nothing_left, local_cluster, tw

pytest.importorskip("distributed")


def test_a_class_of_15_spread_over_two_workers(tmp_path):
    class_file = tmp_path / "class.json"
    with local_cluster(("w1", "w2")) as (address, _daemons):
        res = tw("exercise", "start", "find-blocked", "--students", "15", "--cluster", address,
                 "--class-file", str(class_file), "--format", "json", timeout=600)
        rows = json.loads(res.stdout)["students"]
        assert [r["student"] for r in rows] == [f"s{i:03d}" for i in range(1, 16)]
        assert {r["worker"] for r in rows} == {"w1", "w2"}                    # one group on each
        assert all("tunnelwall --run " in r["way in"] and " exec st" in r["way in"] for r in rows)
        plan = json.loads(class_file.read_text())
        runs = {g["number"]: g["run"] for g in plan["groups"]}
        assert sorted(r.run_id for r in all_runs()) == sorted(runs.values())

        res = tw("exercise", "overview", "find-blocked", "--class-file", str(class_file), "--format", "json")
        before = json.loads(res.stdout)
        assert len(before) == 15 and all(r["result"] == "FAIL" for r in before)

        # Group 1 solves it (its ten students); group 2 does not.
        tw("--run", runs[1], "exercise", "solve", "find-blocked")
        html = tmp_path / "overview.html"
        res = tw("exercise", "overview", "find-blocked", "--class-file", str(class_file), "--format", "json",
                 "--html", str(html))
        after = {r["student"]: r for r in json.loads(res.stdout)}
        assert all(after[f"s{i:03d}"]["result"] == "PASS" for i in range(1, 11))
        assert all(after[f"s{i:03d}"]["result"] == "FAIL" for i in range(11, 16))
        page = html.read_text()
        assert page.count("class=PASS") == 10 and page.count("class=FAIL") == 5
        assert "ssh -N -L 8801:127.0.0.1:" in page and "ssh -N -L 8802:127.0.0.1:" in page

        tw("exercise", "stop", "find-blocked", "--class-file", str(class_file))
        assert not all_runs() and not class_file.exists()
    assert_nothing_left()
