"""The engine's parts on their own (issue 32's split): the flow table, the
rule set and the residual-block table, fed plain objects, no frames; and
the verdict wire type's JSON form."""

from __future__ import annotations

import ipaddress
import math

import pytest

from tunnelwall.base.protocols import NAMES, NUMBERS, TCP, UDP, name_of, number_of
from tunnelwall.base.verdict import Detection, FlowId, LoggedVerdict, ResidualBlock, Verdict
from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.flow import Flow
from tunnelwall.middlebox.flowtable import FlowTable
from tunnelwall.middlebox.profiles import FlowSettings, Match, Rule
from tunnelwall.middlebox.residual import ANY_CLIENT, ResidualTable
from tunnelwall.middlebox.ruleset import RuleSet

CLIENT, SERVER = ipaddress.ip_address("10.0.0.11").packed, ipaddress.ip_address("198.18.0.20").packed


def stats() -> dict:
    return {"flows": 0, "evicted_idle": 0, "evicted_full": 0}


def flow(cport: int, ts: float = 0.0, proto: int = TCP, server: bytes = SERVER, sport: int = 443) -> Flow:
    key = bytes((proto,)) + CLIENT + server + cport.to_bytes(2, "big") + sport.to_bytes(2, "big")
    return Flow(key, proto, CLIENT, cport, server, sport, ts)


# -- flow table ------------------------------------------------------------------------------
def test_a_flow_is_filed_under_both_keys_and_forgotten_under_both():
    gone = []
    table = FlowTable(FlowSettings(max=10, idle_timeout=30.0), stats(), on_evict=gone.append)
    f = flow(40000)
    table.add(f, 0.0, 0, 1)
    assert table.live == 1 and len(table.flows) == 2 and table.flows[f.key] == (f, 0)
    assert [d for _f, d in table.flows.values()] == [0, 1]
    table.forget(f)
    assert table.live == 0 and table.flows == {} and gone == [f] and f.evicted == "replaced"


def test_idle_flows_expire_and_active_ones_are_put_back():
    counts = stats()
    table = FlowTable(FlowSettings(max=10, idle_timeout=30.0), counts)
    quiet, busy = flow(40001), flow(40002)
    table.add(quiet, 0.0, 0, 1)
    table.add(busy, 0.0, 0, 1)
    busy.last_ts = 25.0
    table.expire(31.0)
    assert quiet.evicted == "idle" and not busy.evicted and counts["evicted_idle"] == 1
    assert [f for _due, f in table.expiry] == [busy] and table.expiry[0][0] == 55.0
    table.expire(56.0)
    assert busy.evicted == "idle" and table.live == 0


def test_a_full_table_evicts_the_least_recently_active_of_the_oldest():
    counts = stats()
    table = FlowTable(FlowSettings(max=3, idle_timeout=300.0), counts)
    flows = [flow(40010 + i, ts=float(i)) for i in range(3)]
    for i, f in enumerate(flows):
        f.last_ts = [5.0, 1.0, 9.0][i]
        table.add(f, float(i), 0, 1)
    table.add(flow(40020, ts=10.0), 10.0, 0, 1)
    assert flows[1].evicted == "full" and counts["evicted_full"] == 1 and table.live == 3
    assert not flows[0].evicted and not flows[2].evicted


# -- rule set --------------------------------------------------------------------------------
RULES = """
name: rules-only
seed: 7
inside: [10.0.0.0/8]
rules:
  - name: outbound-udp
    match: {transport: udp, direction: outbound}
    action: drop
  - name: maybe-tls
    match: {protocol: tls, sni: [blocked.example]}
    action: reset
    probability: 0.5
  - name: allowlisted
    match: {protocol: tls}
    unless: {sni: [ok.example]}
    action: drop
"""


def test_address_rules_need_the_flow_to_cross_outwards():
    rules = RuleSet(profiles.loads(RULES))
    assert rules.first_address_rule(flow(40030, proto=UDP)).name == "outbound-udp"
    inside = flow(40031, proto=UDP, server=ipaddress.ip_address("10.9.9.9").packed)
    assert rules.first_address_rule(inside) is None
    assert rules.first_address_rule(flow(40032)) is None                 # TCP


def test_a_rule_that_lost_its_draw_is_spared_for_the_flow_and_the_next_rule_is_tried():
    rules = RuleSet(profiles.loads(RULES), seed=1)
    det = Detection("tls", "client-hello", 1.0, {"sni": "www.blocked.example"})
    outcomes = []
    for cport in range(40100, 40140):
        f = flow(cport)
        rule = rules.first_detection_rule(f, det)
        outcomes.append(rule.name)
        if rule.name == "allowlisted":
            assert f.spared == ["maybe-tls"]                              # lost its draw, remembered
            assert rules.first_detection_rule(f, det).name == "allowlisted"    # never drawn again
    assert set(outcomes) == {"maybe-tls", "allowlisted"}
    again = RuleSet(profiles.loads(RULES), seed=1)
    assert [again.first_detection_rule(flow(c), det).name for c in range(40100, 40140)] == outcomes  # seeded


def test_unless_exempts_what_it_names():
    rules = RuleSet(profiles.loads(RULES), seed=1)
    ok = Detection("tls", "client-hello", 1.0, {"sni": "cdn.ok.example"})
    assert rules.first_detection_rule(flow(40200), ok) is None
    other = Detection("tls", "client-hello", 1.0, {"sni": "other.example"})
    assert rules.first_detection_rule(flow(40201), other).name == "allowlisted"


# -- residual blocks -------------------------------------------------------------------------
def test_a_three_tuple_block_holds_until_it_expires_and_is_dropped_when_met():
    table = ResidualTable()
    rule = Rule("sni", Match(), "reset", residual=90.0)
    table.block_three_tuple(TCP, CLIENT, SERVER, 443, 100.0, rule)
    assert table.holding(TCP, CLIENT, SERVER, 443, 99.0) == (100.0, rule, "drop")
    assert table.holding(TCP, CLIENT, SERVER, 80, 99.0) is None
    other = ipaddress.ip_address("10.0.0.12").packed
    assert table.holding(TCP, other, SERVER, 443, 99.0) is None          # another client
    assert table.holding(TCP, CLIENT, SERVER, 443, 100.0) is None and len(table) == 0


def test_a_server_blocked_after_probing_is_blocked_for_every_client_for_the_run():
    table = ResidualTable()
    table.block_server(TCP, SERVER, 8388, None, "fet+probe", "reset", 5.0)
    other = ipaddress.ip_address("10.0.0.99").packed
    until, rule, action = table.holding(TCP, other, SERVER, 8388, 1e9)
    assert until == math.inf and rule.name == "fet+probe" and action == "reset"
    assert (TCP, ANY_CLIENT, SERVER, 8388) in table.blocks
    table.clear()
    assert table.holding(TCP, other, SERVER, 8388, 6.0) is None


def test_expired_blocks_are_swept_past_the_threshold():
    table = ResidualTable()
    rule = Rule("r", Match(), "drop")
    for i in range(1100):
        table.block_three_tuple(TCP, CLIENT, SERVER, i, 10.0 if i % 2 else 100.0, rule)
    table.sweep(50.0)
    assert len(table) == 550


# -- the wire types --------------------------------------------------------------------------
def test_a_verdict_survives_its_json_form():
    v = Verdict(flow=FlowId("tcp", "10.0.0.11", 40000, "198.18.0.20", 443), action="reset", rule="sni-blocklist",
                protocol="tls", packet_index=4, ms=1.25, residual=90.0, resets={"count": 3, "windows": [1980, 1982]},
                detection=Detection("tls", "client-hello", 1.0, {"sni": "x.example"}), note="n", time=12.5,
                first_payload="16030100", notes={"fet": "exempt"})
    back = Verdict.from_dict(v.as_dict())
    assert back == v and back.as_dict() == v.as_dict()
    assert v.first_seen == pytest.approx(12.49875) and v.blocks
    assert ResidualBlock.from_verdict(v, 100.0) == ResidualBlock("tcp", "10.0.0.11", "198.18.0.20", 443,
                                                                 "sni-blocklist", "drop", 190.0)
    assert ResidualBlock.from_verdict(Verdict(flow=v.flow, action="allow", residual=90.0), 0.0) is None


def test_a_residual_block_reports_the_time_left_or_none_for_the_run():
    block = ResidualBlock("tcp", "*", "198.18.0.20", 8388, "fet+probe", "reset")
    assert block.as_dict(5.0)["seconds_left"] is None and block.as_dict(5.0)["until"] is None
    timed = ResidualBlock("udp", "10.0.0.1", "198.18.0.20", 53, "r", until=20.0)
    assert timed.as_dict(5.0)["seconds_left"] == 15.0 and timed.key == ("udp", "10.0.0.1", "198.18.0.20", 53)


def test_one_protocol_table():
    assert name_of(6) == "tcp" and number_of("udp") == 17 and name_of(132) == "132" and number_of("sctp") is None
    assert all(NUMBERS[name] == number for number, name in NAMES.items())


# -- what a restarted middlebox gets back (the watchdog) --------------------------------------
def test_a_restored_freeze_verdict_counts_afresh_and_drops_at_the_threshold():
    from test_engine import frame

    from tunnelwall.middlebox.engine import Engine
    from tunnelwall.middlebox.restore import restore_block, restore_verdict
    engine = Engine(profiles.load("tspu-2025"), seed=1)
    fid = FlowId("tcp", "10.0.0.11", 40500, "198.18.0.20", 443)
    frozen = Verdict(flow=fid, action="freeze", rule="datacenter-freeze", after_bytes=3000, time=1.0)
    assert restore_verdict(engine, frozen, 10.0)
    assert not restore_verdict(engine, frozen, 10.0)                                   # already there
    assert not restore_verdict(engine, Verdict(flow=FlowId("tcp", "10.0.0.11", 40501, "198.18.0.20", 443),
                                               action="allow"), 10.0)
    reply = frame("198.18.0.20", "10.0.0.11", 443, 40500, bytes(1400), proto="tcp", flags=0x10)
    seen = [(f.verdict.action, f.blocking) for f in (engine.feed(reply, 10.0 + i / 100) for i in range(3))]
    assert seen == [("freeze", False), ("freeze", False), ("drop", True)]
    assert engine.drain()[-1].note.startswith("frozen: 4200 bytes")
    restore_block(engine, ResidualBlock("tcp", "*", "198.18.0.20", 8388, "fet+probe", "reset"), 10.0)
    restore_block(engine, ResidualBlock("tcp", "10.0.0.11", "198.18.0.20", 443, "sni", until=100.0), 10.0)
    assert engine.residual.holding(TCP, ipaddress.ip_address("10.0.0.99").packed, SERVER, 8388, 1e6)[2] == "reset"
    assert engine.residual.holding(TCP, CLIENT, SERVER, 443, 50.0)[0] == 100.0


def test_a_heartbeat_tells_a_stalled_loop_from_one_not_started(tmp_path):
    from tunnelwall.base import heartbeat
    path = tmp_path / "beat"
    assert heartbeat.stalled_for(path) == 0.0                      # no file: not started
    beat = heartbeat.Heartbeat(path)
    assert heartbeat.stalled_for(path) == 0.0                      # made, not beaten yet
    beat.beat(100.0)
    assert heartbeat.last_beat(path) == 100.0 and heartbeat.stalled_for(path, now=100.75) == 0.75
    beat.beat(200.0)                                               # ahead of time: known work (a reload)
    assert heartbeat.stalled_for(path, now=150.0) == 0.0 and heartbeat.stalled_for(path, now=200.5) == 0.5
    heartbeat.reset(path)
    assert heartbeat.stalled_for(path, now=1e9) == 0.0


def test_a_logged_verdict_reads_the_controllers_record_and_skips_the_other_records():
    v = Verdict(flow=FlowId("tcp", "10.0.0.11", 40000, "198.18.0.20", 8388), action="probe", rule="fet-probe",
                time=5.0)
    record = {"time": 6.0, "profile": "gfw-2022", **{k: x for k, x in v.as_dict().items() if k != "time"},
              "installed": True, "decided": 5.0, "probe": {"requested": True}}
    lv = LoggedVerdict.from_record(record)
    assert lv.verdict.rule == "fet-probe" and lv.time == 6.0 and lv.probe_requested and lv.installed
    assert lv.record is record and lv.profile == "gfw-2022"
    assert LoggedVerdict.from_record({"time": 1.0, "type": "watchdog", "stalled_ms": 600}) is None
    assert LoggedVerdict.from_record({"time": 1.0, "type": "probe", "server": "x", "confirmed": True}) is None
    block = ResidualBlock("tcp", "*", "198.18.0.20", 8388, "fet+probe", "reset")
    assert ResidualBlock.from_api(block.as_dict(0.0)) == block


def test_the_controllers_block_book_and_probe_records():
    from tunnelwall.controller.blocks import BlockBook
    from tunnelwall.controller.config import ProbeTiming
    from tunnelwall.controller.probing import confirmed_block, probe_record, probe_request
    book = BlockBook()
    v = Verdict(flow=FlowId("tcp", "10.0.0.11", 40000, "198.18.0.20", 443), action="reset", rule="sni",
                residual=90.0, time=1.0)
    book.remember_logged({**v.as_dict(), "time": 10.0, "profile": "gfw-2025"})
    book.remember_logged({"time": 10.0, "type": "watchdog", "stalled_ms": 700})
    book.remember_logged({"time": 10.0, "type": "probe", "server": "198.18.0.20", "server_port": 8388,
                          "rule": "fet", "confirmed": True})
    assert [(b.client, b.server_port, b.until) for b in book.live(50.0)] == [("10.0.0.11", 443, 100.0),
                                                                              ("*", 8388, math.inf)]
    assert [b.server_port for b in book.live(100.0)] == [8388] and book.clear() == 1 and len(book) == 0
    probe = Verdict(flow=FlowId("tcp", "10.0.0.11", 40000, "198.18.0.20", 8388), action="probe", rule="fet-probe",
                    then="reset", residual=30.0, first_payload="00ff")
    req = probe_request(probe, ProbeTiming(0.5, 8, 3.0), seed=7)
    assert (req["server"], req["port"], req["then"], req["first_payload"], req["seed"]) == \
        ("198.18.0.20", 8388, "reset", "00ff", 7)
    block = confirmed_block(req, 100.0)
    assert (block.client, block.action, block.until, block.rule) == ("*", "reset", 130.0, "fet-probe+probe")
    record = probe_record({"request": req, "fingerprint": "f", "confirmed": True, "reactions": []}, "gfw-2022", 5.0)
    assert record["type"] == "probe" and record["server_port"] == 8388 and record["confirmed"]


def test_every_verdict_on_a_real_mix_fits_the_wire_schema():
    """The schema beside base/verdict.py describes what the engine sends:
    every verdict of a mixed capture (eight protocols, every profile's rules),
    and the verdict log's lines with the controller's fields added."""
    import json

    import jsonschema

    from tunnelwall.base.verdict import SCHEMA
    from tunnelwall.middlebox.engine import Engine
    from test_engine import C, frame, tcp_flow
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    seen = set()
    for name in ("gfw-2025", "gfw-2022", "tspu-2025", "iran-2026", "log-only"):
        engine = Engine(profiles.load(name), seed=1)
        tcp_flow(engine, 41000, 443, b"\x16\x03\x01\x00\x05hello")
        tcp_flow(engine, 41001, 80, b"GET / HTTP/1.1\r\nHost: twitter.com\r\n\r\n")
        engine.feed(frame(C, "198.18.0.20", 41002, 51820, b"\x01\x00\x00\x00" + bytes(144)), 1.0)
        for v in engine.drain():
            record = v.as_dict()
            validator.validate(record)
            validator.validate({**record, "profile": name, "installed": True, "decided": record["time"]})
            assert Verdict.from_dict(record).as_dict() == record
            seen.add(v.action)
    assert {"reset", "drop"} <= seen
    bad = Verdict(flow=FlowId("tcp", "10.0.0.1", 1, "10.0.0.2", 2), action="explode").as_dict()
    assert list(validator.iter_errors(bad))
