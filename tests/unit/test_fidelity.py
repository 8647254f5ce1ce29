"""``tunnelwall fidelity``: published vectors replayed offline against every profile."""

import json
import re
from pathlib import Path

import pytest

from tunnelwall.cli.main import main
from tunnelwall.middlebox import fidelity, profiles
from tunnelwall.middlebox.fidelity import BLOCKED, NOT_BLOCKED, PROBED, Reference, Vector, render
from tunnelwall.middlebox.fidelity.capture import Tcp

ROOT = Path(__file__).resolve().parents[2]
NAMES = fidelity.profile_names()


def test_every_profile_is_known_and_no_alias_is_listed():
    assert "gfw" not in NAMES and {"gfw-2025", "gfw-2022", "gfw-2025-08-443", "log-only"} <= set(NAMES)


def test_every_vector_names_real_profiles_and_is_unique_within_one():
    seen = set()
    for item in fidelity.vector_sets():
        assert item.profiles and set(item.profiles) <= set(NAMES), item.name
        assert item.source, item.name
        for name in item.profiles:
            assert (name, item.set, item.name) not in seen
            seen.add((name, item.set, item.name))


@pytest.mark.parametrize("name", NAMES)
def test_fidelity_runs_offline_and_every_disagreement_is_explained(name):
    from tunnelwall.cli.fidelity import all_vectors
    report = fidelity.evaluate(name, all_vectors())
    assert report.profile == name
    for row in report.rows:
        assert row.emulated and row.published and row.source
        if not row.agree:
            assert len(row.note) > 40, f"{name}: '{row.vector}' disagrees without an explanation"
    if name != "log-only":
        assert report.rows, f"{name}: no vector applies"


def test_fet_boundaries_all_agree_under_gfw_2022():
    rows = [r for r in fidelity.evaluate("gfw-2022").rows if r.set == "fet-boundaries"]
    assert len(rows) == 14 and all(r.agree for r in rows)
    assert sum(r.emulated == BLOCKED for r in rows) == 7 and sum(r.emulated == NOT_BLOCKED for r in rows) == 7


def test_a_changed_rule_shows_up_as_disagreement():
    """The comparison can fail: with the FET rule only logging, the
    non-exempt boundary vectors are no longer blocked (the log verdict is
    the flow's first and last)."""
    changed = profiles.apply_overrides(profiles.load("gfw-2022"), ["fet.action=log"])
    rows = [r for r in fidelity.evaluate(changed).rows if r.set == "fet-boundaries"]
    assert sum(not r.agree for r in rows) == 7
    assert {r.emulated for r in rows if not r.agree} == {NOT_BLOCKED}


def test_port_443_shape_is_read_from_the_forged_frames():
    rows = {r.vector: r for r in fidelity.evaluate("gfw-2025-08-443").rows}
    syn = rows["a SYN to port 443"]
    assert syn.agree and syn.emulated == "3 RST+ACK to the client after its SYN: seq 0, windows 1980-1982"
    assert not rows["the server's SYN/ACK on port 443"].agree          # the finding docs/censors.md explains
    changed = profiles.loads((ROOT / "middlebox/profiles/gfw-2025-08-443.yaml").read_text().replace(
        "windows: [1980, 1982]", "windows: [1000, 1002]"), "x.yaml")
    rows = {r.vector: r for r in fidelity.evaluate(changed).rows}
    assert rows["a SYN to port 443"].emulated.endswith("windows 1000-1002") and not rows["a SYN to port 443"].agree


def test_tor_vectors_are_the_fixture_bytes_and_probed_under_gfw_2025():
    from tunnelwall.middlebox.fidelity import tor
    fixtures = ROOT / "tests" / "fixtures" / "tor"
    assert tor.TOR_HELLO_SHORT == (fixtures / "tor-0.4.9.11-client-hello-1.bin").read_bytes()
    assert tor.TOR_HELLO_LONG == (fixtures / "tor-0.4.9.11-client-hello-2.bin").read_bytes()
    rows = [r for r in fidelity.evaluate("gfw-2025").rows if r.set == "tor"]
    assert len(rows) == 4 and all(r.agree for r in rows)
    assert [r.emulated for r in rows] == [PROBED, PROBED, NOT_BLOCKED, NOT_BLOCKED]


def test_a_vector_set_plugs_in():
    """A set is a sequence of Vector/Reference: evaluate takes any, as the
    registry's modules provide them."""
    extra = [Vector("extra", "WireGuard initiation on TCP (not WireGuard)",
                    lambda: Tcp(dport=51820).handshake().data(b"\x01\x00\x00\x00" + bytes(144)).frames,
                    NOT_BLOCKED, "a test", ("tspu",)),
             Reference("extra", "made-up rate", "openvpn", 0.5, "a test", ("tspu",))]
    rows = fidelity.evaluate("tspu", extra).rows
    assert [(r.vector, r.agree) for r in rows] == [("WireGuard initiation on TCP (not WireGuard)", True),
                                                  ("made-up rate", False)]
    assert rows[1].emulated == "1" and rows[1].kind == "reference"


def test_cli_table_json_and_exit_codes(capsys):
    assert main(["fidelity", "gfw-2025-08-443"]) == 0                  # a disagreement is not an error
    out = capsys.readouterr().out
    assert out.startswith("gfw-2025-08-443: 2 of 3 agree") and "disagreement: the server's SYN/ACK" in out
    assert main(["fidelity", "gfw,tspu", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["profile"] for d in data] == ["gfw-2025", "tspu"]
    assert all(set(r) >= {"published", "emulated", "agree", "source"} for d in data for r in d["rows"])
    assert main(["fidelity", "no-such-profile"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunnelwall: unknown censor profile") and err.count("\n") == 1


def test_docs_carry_the_table_the_verb_prints():
    text = (ROOT / "docs" / "censors.md").read_text()
    found = re.search(re.escape(render.BEGIN) + ".*?" + re.escape(render.END), text, re.S)
    assert found, "docs/censors.md has no fidelity table"
    from tunnelwall.cli.fidelity import all_vectors
    expected = render.markdown([fidelity.evaluate(name, all_vectors()) for name in NAMES])
    assert found.group(0) == expected, "docs/censors.md is out of step: paste `tunnelwall fidelity --format markdown`"
