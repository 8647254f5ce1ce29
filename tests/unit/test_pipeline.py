"""The border switch's flow tables (controller/pipeline.py) as the
controller sends them: serialised OpenFlow 1.3 messages, checked rule by
rule for the conntrack offload (flows.offload: conntrack)."""

from __future__ import annotations

import pytest
from os_ken.ofproto import nicira_ext, ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser

from tunnelwall.controller import pipeline
from tunnelwall.controller.config import ControllerConfig, SwitchPort

MBOX = 3


class Datapath:
    ofproto, ofproto_parser, id = ofp, parser, 1

    def set_xid(self, msg):
        msg.xid = 0


def config(placement: str, offload: str = "conntrack") -> ControllerConfig:
    ports = {p: SwitchPort(f"s1-eth{p}", "02:00:00:00:01:00", f"n{p}", f"02:00:00:00:00:0{i + 1}")
             for i, p in enumerate((1, 2, MBOX))}
    conntrack = offload == "conntrack"
    return ControllerConfig(dpid=1, ports=ports, middlebox_port=MBOX, placement=placement, fail="closed",
                            profile="gfw-2025", socket="-", verdict_log="-", of_port=0, api_port=0, api_token="-",
                            offload=offload, ct_zone=0x7123 if conntrack else None,
                            bypass_vlan=4093 if conntrack else None)


def rules(cfg: ControllerConfig, middlebox_up: bool = True, generation: int = 1) -> dict:
    out = {}
    for mod in pipeline.base_flows(Datapath(), cfg, middlebox_up, generation):
        mod.serialize()                                   # what os-ken would send: must encode
        out.setdefault((mod.table_id, mod.priority), []).append(mod)
    return out


def actions(mod) -> list:
    return [a for i in mod.instructions if isinstance(i, parser.OFPInstructionActions) for a in i.actions]


def gotos(mod) -> list[int]:
    return [i.table_id for i in mod.instructions if isinstance(i, parser.OFPInstructionGotoTable)]


@pytest.mark.parametrize("placement", ["inline", "tap"])
def test_tagged_frames_from_the_middlebox_commit_their_connection_with_the_generation_mark(placement):
    commits = rules(config(placement))[(pipeline.TABLE_CENSOR, pipeline.PRIO_FROM_MIDDLEBOX + 1)]
    assert sorted(m.match["eth_type"] for m in commits) == [pipeline.IPV4, pipeline.IPV6]
    for mod in commits:
        assert mod.match["in_port"] == MBOX and mod.match["vlan_vid"] == ofp.OFPVID_PRESENT | 4093
        pop, ct = actions(mod)
        assert isinstance(pop, parser.OFPActionPopVlan)
        assert isinstance(ct, parser.NXActionCT) and ct.flags == nicira_ext.NX_CT_F_COMMIT
        assert (ct.zone_ofs_nbits, ct.recirc_table) == (0x7123, pipeline.NX_CT_NO_RECIRC)
        (mark,) = ct.actions
        assert mark.key == "ct_mark" and mark.value == 1
        # Inline the frame goes on to its destination; in tap it is a copy and goes nowhere.
        assert gotos(mod) == ([pipeline.TABLE_FORWARD] if placement == "inline" else [])


@pytest.mark.parametrize("placement,default", [("inline", ["output"]), ("tap", ["output", "resubmit"])])
def test_ip_is_looked_up_and_only_marked_connections_skip_the_middlebox(placement, default):
    table = rules(config(placement), generation=5)
    for mod in table[(pipeline.TABLE_CENSOR, pipeline.PRIO_INSPECT)]:
        (ct,) = actions(mod)
        assert isinstance(ct, parser.NXActionCT) and ct.flags == 0
        assert (ct.zone_ofs_nbits, ct.recirc_table) == (0x7123, pipeline.TABLE_TRACKED)
    (marked,) = table[(pipeline.TABLE_TRACKED, 10)]
    assert marked.match["ct_mark"] == 5
    assert marked.match["ct_state"] == (pipeline.CT_TRACKED, pipeline.CT_TRACKED | pipeline.CT_INVALID)
    (resubmit,) = actions(marked)
    assert isinstance(resubmit, parser.NXActionResubmitTable) and resubmit.table_id == pipeline.TABLE_FORWARD
    (rest,) = table[(pipeline.TABLE_TRACKED, 0)]
    kinds = ["output" if isinstance(a, parser.OFPActionOutput) else "resubmit" for a in actions(rest)]
    assert kinds == default and actions(rest)[0].port == MBOX
    # Fragments still go to the middlebox first, without a lookup; a SYN is
    # first committed with mark 0, so an old connection's mark on the same
    # 5-tuple cannot cover the new one (issue 33), then goes to the middlebox.
    steer = table[(pipeline.TABLE_CENSOR, pipeline.PRIO_STEER)]
    syns = [m for m in steer if "tcp_flags" in str(m.match) or "tcp_flags_nxm" in str(m.match)]
    frags = [m for m in steer if m not in syns]
    assert len(syns) == 2 and len(frags) == 2
    for mod in frags:
        assert not any(isinstance(a, parser.NXActionCT) for a in actions(mod))
    for mod in syns:
        unmark, output, *rest = actions(mod)
        assert isinstance(unmark, parser.NXActionCT) and unmark.flags == pipeline.NX_CT_COMMIT
        assert unmark.recirc_table == pipeline.NX_CT_NO_RECIRC and unmark.zone_ofs_nbits == 0x7123
        (set_mark,) = unmark.actions
        assert set_mark.key == "ct_mark" and set_mark.value == 0
        assert isinstance(output, parser.OFPActionOutput) and output.port == MBOX


def test_with_the_middlebox_away_unmarked_flows_follow_the_fail_policy_and_marked_ones_go_on():
    table = rules(config("inline"), middlebox_up=False)
    assert table[(pipeline.TABLE_TRACKED, 0)][0].instructions == []          # fail: closed
    assert table[(pipeline.TABLE_TRACKED, 10)][0].match["ct_mark"] == 1


def test_rule_offload_has_no_tracking():
    table = rules(config("inline", offload="rules"))
    assert not any(k[0] == pipeline.TABLE_TRACKED for k in table)
    assert not any(isinstance(a, parser.NXActionCT) for mods in table.values() for m in mods for a in actions(m))


@pytest.mark.parametrize("offload", ["conntrack", "rules"])
def test_inline_a_servers_synack_is_copied_to_the_middlebox_and_sent_on(offload):
    """Above the inspect rules and below every verdict, SYN/ACKs (SYN and
    ACK set, whatever else) go to the middlebox as a copy and on to table 1;
    in tap everything is a copy already, and with the middlebox away the
    fail policy decides, so the rule is only there inline, middlebox up."""
    table = rules(config("inline", offload))
    copies = table[(pipeline.TABLE_CENSOR, pipeline.PRIO_INSPECT + 1)]
    assert sorted(m.match["eth_type"] for m in copies) == [pipeline.IPV4, pipeline.IPV6]
    for mod in copies:
        assert mod.match["ip_proto"] == pipeline.TCP
        assert mod.match["tcp_flags_nxm"] == (pipeline.TCP_SYN | pipeline.TCP_ACK,) * 2
        *tracked, out = actions(mod)
        assert out.port == MBOX and gotos(mod) == [pipeline.TABLE_FORWARD]
        if offload == "conntrack":
            # Through the tracker first (no commit, no recirculation): the SYN
            # was committed, so the tracker must see the handshake's answer or
            # it takes the client's next segments for invalid.
            (ct,) = tracked
            assert isinstance(ct, parser.NXActionCT) and ct.zone_ofs_nbits == 0x7123 and not ct.flags
            assert ct.recirc_table == nicira_ext.NX_CT_RECIRC_NONE
        else:
            assert tracked == []
    assert pipeline.PRIO_INSPECT + 1 < pipeline.PRIO_VERDICT < pipeline.PRIO_STEER       # fragments stay held
    assert (pipeline.TABLE_CENSOR, pipeline.PRIO_INSPECT + 1) not in rules(config("tap", offload))
    assert (pipeline.TABLE_CENSOR, pipeline.PRIO_INSPECT + 1) not in rules(config("inline", offload), False)


# -- issue 33: a new connection on a reused 5-tuple, with 5-tuple rules ------------

@pytest.mark.parametrize("placement", ["inline", "tap"])
def test_with_rules_offload_syns_go_to_the_middlebox_only(placement):
    """The middlebox holds a SYN that reuses an allowed flow's 5-tuple until
    the controller deleted that flow's rules, so it must have the frame, not
    a copy, in both placements."""
    steer = rules(config(placement, "rules"))[(pipeline.TABLE_CENSOR, pipeline.PRIO_STEER)]
    syns = [m for m in steer if "tcp_flags" in str(m.match)]
    assert len(syns) == 2
    for mod in syns:
        (output,) = actions(mod)
        assert output.port == MBOX and gotos(mod) == []


def test_retraction_deletes_both_directions_exactly_then_sends_the_syn_on():
    from tunnelwall.base.verdict import FlowId, Verdict
    flow = FlowId("tcp", "10.0.0.11", 40000, "198.18.0.10", 80)
    verdict = Verdict(flow=flow, action="allow")
    mods = pipeline.retract_flows(Datapath(), verdict)
    assert len(mods) == 2
    for mod in mods:
        mod.serialize()
        assert mod.command == ofp.OFPFC_DELETE_STRICT and mod.priority == pipeline.PRIO_VERDICT
        assert mod.cookie == pipeline.COOKIE_VERDICT and mod.table_id == pipeline.TABLE_CENSOR
    assert {(m.match["ipv4_src"], m.match["tcp_src"]) for m in mods} == {("10.0.0.11", 40000), ("198.18.0.10", 80)}
    out = pipeline.send_on(Datapath(), config("inline", "rules"), b"\x00" * 60)
    out.serialize()
    assert out.in_port == MBOX and out.actions[0].port == ofp.OFPP_TABLE and out.data == b"\x00" * 60
