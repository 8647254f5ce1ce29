"""Exercise files: the catalogue loads, and bad files fail with file:line."""

import pytest

from tunnelwall.classroom import exercises
from tunnelwall.base.errors import SourceError, TunnelwallError

GOOD = """name: x
title: X
topology: classroom
profile: gfw
goal: get through
checks:
  - kind: forward
    url: http://127.0.0.1:8080/
    bytes: 10
"""


def test_catalogue_loads_with_three_fetches_per_forward_check():
    names = set(exercises.catalogue())
    assert {"find-blocked", "wireguard-blocked", "defeat-fet", "dns-poisoning"} <= names
    for name in names:
        ex = exercises.load(name)
        assert ex.checks and all(c.repeat == 3 for c in ex.checks if c.kind == "forward")


@pytest.mark.parametrize("text,line,words", [
    (GOOD + "  - kind: forward\n    url: u\n    bytes: 1\n    repeat: 0\n", 13, "checks.1.repeat: 0 is out of range (minimum 1)"),
    (GOOD + "  - kind: guess\n", 10, "checks.1.kind: 'guess' must be one of: forward, answer"),
    (GOOD.replace("goal: get through\n", ""), 1, "missing 'goal'"),
    (GOOD + "hint: typo\n", 10, "unknown key 'hint'"),
    (GOOD + "  - kind: answer\n    key: k\n", 10, "check #2: an answer check needs key and expect"),
])
def test_bad_exercise_files(tmp_path, text, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SourceError) as err:
        exercises.load(str(path))
    assert str(err.value).startswith(f"{path}:{line}: ") and words in str(err.value), str(err.value)


def test_unknown_exercise_name():
    with pytest.raises(TunnelwallError, match="unknown exercise 'nope'"):
        exercises.load("nope")


def test_a_class_goes_to_the_workers_with_the_most_room_first():
    from tunnelwall.base.errors import TunnelwallError
    from tunnelwall.classroom.spread import place
    caps = {"big": {"free": 5, "limit": "memory"}, "small": {"free": 2, "limit": "cores"},
            "full": {"free": 0, "limit": "scopes"}}
    assert place(caps, 5) == ["big", "big", "big", "big", "small"]    # equal room: ties go by name
    assert sorted(place(caps, 7)) == ["big"] * 5 + ["small"] * 2
    with pytest.raises(TunnelwallError, match=r"room for 7 more testbeds, the class needs 8 .*full: 0 \(scopes\)"):
        place(caps, 8)
