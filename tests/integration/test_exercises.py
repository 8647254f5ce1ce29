"""Issue 8: every exercise's check fails for the wrong scripted solution
and passes for the correct one, on every student host."""

import json

import pytest
from conftest import assert_nothing_left, tw

from tunnelwall.classroom import exercises


@pytest.mark.parametrize("name", sorted(exercises.catalogue()))
def test_exercise_wrong_fails_correct_passes(name):
    out = tw("exercise", "start", name).stdout
    assert "students: st01" in out and "check:" in out
    try:
        res = tw("exercise", "check", name, "--format", "json", check=False)
        assert res.returncode == 1                          # nothing solved yet
        tw("exercise", "solve", name, "--solution", "wrong")
        res = tw("exercise", "check", name, "--format", "json", check=False)
        wrong = json.loads(res.stdout)
        assert res.returncode == 1 and len(wrong) == 10 and not any(o["passed"] for o in wrong), wrong
        tw("exercise", "solve", name, "--solution", "correct")
        res = tw("exercise", "check", name, "--format", "json", check=False)
        right = json.loads(res.stdout)
        assert res.returncode == 0 and len(right) == 10 and all(o["passed"] for o in right), right
        table = tw("exercise", "check", name).stdout
        assert "st10" in table and "PASS" in table and "10/10 checks passed" in table
    finally:
        tw("down")
    assert_nothing_left()


def test_check_refuses_another_exercise():
    tw("exercise", "start", "find-blocked")
    try:
        res = tw("exercise", "check", "dns-poisoning", check=False)
        assert res.returncode == 2 and "is not exercise 'dns-poisoning'" in res.stderr
    finally:
        tw("down")
    assert_nothing_left()
