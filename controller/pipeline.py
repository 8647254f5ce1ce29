"""The border switch's flow tables, as pure functions of the config.

Table 0 (censor):
  prio 1000  in_port=middlebox            -> table 1   (re-injected / forged packets)
  prio 200   residual block, 3-tuple      -> drop      (hard_timeout = rule's residual)
  prio 150   IPv4/IPv6 fragment           -> middlebox only, in both placements: it
                                             reassembles, then forwards or drops them all
  prio 150   TCP SYN (no ACK)             -> as prio 10: a new connection on a 5-tuple
                                             that has a verdict is a new flow (conntrack
                                             offload: committed with mark 0 first, so an
                                             old connection's mark never covers it)
  prio 100   per-flow verdict, 5-tuple    -> table 1 | drop | meter + table 1
  prio 11    TCP SYN/ACK, inline          -> copy to middlebox + table 1
  prio 10    IPv4 and IPv6, tap           -> copy to middlebox + table 1
             IPv4 and IPv6, inline        -> middlebox only (it re-injects what passes)
  prio 0     anything else (ARP)          -> table 1
With ``flows.offload: conntrack`` the switch's connection tracker (zone of
the run) takes the place of allowed flows' rules:
  prio 1001  in_port=middlebox, VLAN <bypass> -> pop the tag, commit the
             connection with ct_mark=<generation>; inline -> table 1, tap -> dropped
             (the middlebox tags the frames of flows it allowed)
  prio 10    IPv4 and IPv6                -> ct lookup, then table 2
Table 2 (conntrack only):
  prio 10    ct_mark=<generation>, +trk-inv -> table 1 (allowed: the middlebox is done with it)
  prio 0                                  -> what prio 10 does above (middlebox, or copy + table 1)
The generation changes when a profile is reloaded, so connections allowed
under the old profile are inspected afresh, as their rules are deleted.
Table 1 (forwarding, static: every neighbour's MAC is known from the topology,
so nothing is learned, and packets the middlebox injects with a spoofed
source MAC cannot poison a MAC table):
  prio 10    eth_dst=<neighbour MAC>      -> its port
  prio 5     eth_dst=broadcast, IPv6 multicast (33:33:*) -> every port but the middlebox's
  prio 0                                  -> drop

An inline middlebox gets a copy of a server's SYN/ACK, not the frame: it
sees it (its TCP model needs the server's sequence number) but does not
hold it, since nothing it could decide from a SYN/ACK has to stop that
one frame (a verdict from a SYN/ACK's payload still blocks the rest of
the connection). Under many short connections this saves a quarter of
the frames that cross the middlebox and back before their verdict.

Verdict rules for allowed flows idle out after ``rule_idle_timeout``; the
flow's next packet then reaches the middlebox, which re-announces the
verdict. Blocking rules never idle out: a blocked flow stays blocked however
long it pauses. Open vSwitch's default fragment handling sets the ports of
every fragment to 0, so no 5-tuple rule matches a fragment and no rule is
ever installed for ports 0: fragments cannot skip the censor.

Cookies tell our rule kinds apart so they can be replaced selectively.
"""

from __future__ import annotations

from tunnelwall.base.policer import burst_kbit
from tunnelwall.base.protocols import ICMPV6, TCP, UDP, number_of
from tunnelwall.base.verdict import ResidualBlock, Verdict

from .config import ControllerConfig

COOKIE_PIPELINE = 0x7477_0001
COOKIE_VERDICT = 0x7477_0002
COOKIE_RESIDUAL = 0x7477_0003
COOKIE_MASK = 0xFFFF_FFFF

TABLE_CENSOR, TABLE_FORWARD, TABLE_TRACKED = 0, 1, 2
NX_CT_COMMIT, NX_CT_NO_RECIRC = 1, 0xFF
CT_INVALID, CT_TRACKED = 0x10, 0x20     # ct_state bits (Open vSwitch's +inv, +trk)
PRIO_FROM_MIDDLEBOX, PRIO_RESIDUAL, PRIO_STEER, PRIO_VERDICT, PRIO_INSPECT = 1000, 200, 150, 100, 10
IPV4, IPV6 = 0x0800, 0x86DD
VERDICT_IDLE_TIMEOUT = 60
TCP_SYN, TCP_ACK = 0x002, 0x010
IP_FRAG_ANY = 1                         # Open vSwitch's NXM ip_frag: set on every fragment


def _addresses(src: str | None, dst: str) -> dict:
    """eth_type and address fields for an IPv4 or IPv6 pair."""
    v6 = ":" in dst
    fields = {"eth_type": IPV6 if v6 else IPV4, ("ipv6_dst" if v6 else "ipv4_dst"): dst}
    if src is not None:
        fields["ipv6_src" if v6 else "ipv4_src"] = src
    return fields


def five_tuple(parser, proto: int, src: str, sport: int, dst: str, dport: int):
    fields = {**_addresses(src, dst), "ip_proto": proto}
    if proto == TCP:
        fields.update(tcp_src=sport, tcp_dst=dport)
    elif proto == UDP:
        fields.update(udp_src=sport, udp_dst=dport)
    return parser.OFPMatch(**fields)


def three_tuple(parser, proto: int, client: str, server: str, server_port: int):
    """Client -> server:port; client "*" matches every client (a blocked server)."""
    fields = {**_addresses(None if client == "*" else client, server), "ip_proto": proto}
    if proto == TCP:
        fields["tcp_dst"] = server_port
    elif proto == UDP:
        fields["udp_dst"] = server_port
    return parser.OFPMatch(**fields)


def base_flows(dp, config: ControllerConfig, middlebox_up: bool = True, generation: int = 1,
               fail: str | None = None) -> list:
    """FlowMods of the static pipeline. While the middlebox is away, new IPv4
    flows are forwarded uninspected (profile ``fail: open``) or dropped
    (``fail: closed``), whatever the placement; *fail* overrides the
    profile's (a stalled middlebox: the profile's overload policy).
    *generation* is the connection tracker's mark of allowed flows
    (conntrack offload)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    mbox = config.middlebox_port
    goto = parser.OFPInstructionGotoTable(TABLE_FORWARD)
    mods = []

    def add(table, prio, match, instructions):
        mods.append(parser.OFPFlowMod(dp, cookie=COOKIE_PIPELINE, table_id=table, priority=prio, match=match,
                                      instructions=instructions))

    add(TABLE_CENSOR, PRIO_FROM_MIDDLEBOX, parser.OFPMatch(in_port=mbox), [goto])
    if config.prober_port:
        # The censor's own probes (and the answers to them) are not inspected.
        add(TABLE_CENSOR, PRIO_FROM_MIDDLEBOX, parser.OFPMatch(in_port=config.prober_port), [goto])
        add(TABLE_CENSOR, PRIO_FROM_MIDDLEBOX, parser.OFPMatch(eth_dst=config.prober_mac), [goto])
    to_mbox = parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(mbox)])
    if not middlebox_up and (fail or config.fail) == "closed":
        inspect, fragments = [], []
    elif not middlebox_up:
        inspect, fragments = [goto], [goto]
    elif config.placement == "inline":
        inspect, fragments = [to_mbox], [to_mbox]
    else:
        inspect, fragments = [to_mbox, goto], [to_mbox]
    # IP not caught above: to the middlebox, or first through the tracker
    # (conntrack offload), whose marked connections skip it. SYNs and
    # fragments (below) always go to the middlebox first.
    ip = _track_allowed(dp, config, add, inspect, generation) if config.offload == "conntrack" else inspect
    syn = _unmark_first(dp, config, inspect) if config.offload == "conntrack" and middlebox_up else inspect
    if config.offload == "rules" and middlebox_up:
        # A SYN on the 5-tuple of a flow with an allow rule must not reach the
        # server before that rule is gone: the middlebox holds it, has the
        # controller delete the rule, which then sends the SYN on (issue 33).
        syn = [to_mbox]
    for eth_type in (IPV4, IPV6):
        add(TABLE_CENSOR, PRIO_INSPECT, parser.OFPMatch(eth_type=eth_type), ip)
        # Open vSwitch wants a field's prerequisites before it in the match,
        # which os-ken keeps only for an explicitly ordered match.
        add(TABLE_CENSOR, PRIO_STEER, parser.OFPMatch(_ordered_fields=[
            ("eth_type", eth_type), ("ip_frag", (IP_FRAG_ANY, IP_FRAG_ANY))]), fragments)
        add(TABLE_CENSOR, PRIO_STEER, parser.OFPMatch(_ordered_fields=[
            ("eth_type", eth_type), ("ip_proto", TCP), ("tcp_flags_nxm", (TCP_SYN, TCP_SYN | TCP_ACK))]), syn)
        if middlebox_up and config.placement == "inline":
            add(TABLE_CENSOR, PRIO_INSPECT + 1, parser.OFPMatch(_ordered_fields=[
                ("eth_type", eth_type), ("ip_proto", TCP), ("tcp_flags_nxm", (TCP_SYN | TCP_ACK, TCP_SYN | TCP_ACK))]),
                _seen_by_tracker(dp, config, [to_mbox]) + [goto] if config.offload == "conntrack" else [to_mbox, goto])
    add(TABLE_CENSOR, 0, parser.OFPMatch(), [goto])
    ports = config.ports
    for port, info in ports.items():
        if port != mbox:
            add(TABLE_FORWARD, 10, parser.OFPMatch(eth_dst=info.peer_mac),
                [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(port)])])
    flood = [parser.OFPActionOutput(p) for p in sorted(ports) if p != mbox]
    add(TABLE_FORWARD, 5, parser.OFPMatch(eth_dst="ff:ff:ff:ff:ff:ff"),
        [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, flood)])
    # IPv6 neighbour discovery goes to multicast MACs (RFC 2464 section 7).
    add(TABLE_FORWARD, 5, parser.OFPMatch(eth_dst=("33:33:00:00:00:00", "ff:ff:00:00:00:00")),
        [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, flood)])
    add(TABLE_FORWARD, 0, parser.OFPMatch(), [])
    return mods


def _track_allowed(dp, config: ControllerConfig, add, inspect: list, generation: int) -> list:
    """The conntrack offload's rules (see the module's docstring); returns
    what the inspect rules do instead of *inspect*: a lookup in the run's
    zone that continues in table 2, where *inspect* is the default.

    Why: an allowed flow's 5-tuple rules cost the controller an OpenFlow
    round and the userspace switch a revalidation of its cached flows each,
    so short allowed flows were left passing through the middlebox, which
    then saw every packet of them. The connection tracker remembers a
    connection from a single packet the middlebox tags, with no flow-table
    change and no controller."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    zone, mbox = config.ct_zone, config.middlebox_port
    commit = [parser.OFPActionPopVlan(),
              parser.NXActionCT(flags=NX_CT_COMMIT, zone_src="", zone_ofs_nbits=zone, recirc_table=NX_CT_NO_RECIRC,
                                alg=0, actions=[parser.OFPActionSetField(ct_mark=generation)])]
    then = [parser.OFPInstructionGotoTable(TABLE_FORWARD)] if config.placement == "inline" else []
    for eth_type in (IPV4, IPV6):                      # the tracker takes IP only
        add(TABLE_CENSOR, PRIO_FROM_MIDDLEBOX + 1,
            parser.OFPMatch(in_port=mbox, vlan_vid=ofp.OFPVID_PRESENT | config.bypass_vlan, eth_type=eth_type),
            [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, commit)] + then)
    # Table 2 cannot go back to table 1 (goto only moves forward): resubmit,
    # after the inspect rule's own actions (one apply-actions instruction).
    resubmit = parser.NXActionResubmitTable(table_id=TABLE_FORWARD)
    # Only packets the tracker places in a marked connection: one it finds
    # invalid (a new connection reusing the 5-tuple, segments far outside the
    # window) goes to the middlebox, which decides on its own state.
    add(TABLE_TRACKED, 10, parser.OFPMatch(ct_state=(CT_TRACKED, CT_TRACKED | CT_INVALID), ct_mark=generation),
        [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [resubmit])])
    actions = [a for i in inspect if isinstance(i, parser.OFPInstructionActions) for a in i.actions]
    if any(isinstance(i, parser.OFPInstructionGotoTable) for i in inspect):
        actions.append(resubmit)
    add(TABLE_TRACKED, 0, parser.OFPMatch(),
        [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else [])
    lookup = parser.NXActionCT(flags=0, zone_src="", zone_ofs_nbits=zone, recirc_table=TABLE_TRACKED, alg=0,
                               actions=[])
    return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [lookup])]


def _seen_by_tracker(dp, config: ControllerConfig, instructions: list) -> list:
    """*instructions* with the packet first passed through the run's
    connection tracker (no commit, no recirculation): the server's SYN/ACK,
    which inline is copied to the middlebox and sent on without the
    tracker's lookup. The SYN is committed (below), so the tracker follows
    the handshake; without the SYN/ACK it would take the client's next
    segments for invalid and never let the allowed connection by."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    track = parser.NXActionCT(flags=0, zone_src="", zone_ofs_nbits=config.ct_zone, recirc_table=NX_CT_NO_RECIRC,
                              alg=0, actions=[])
    actions = [track] + [a for i in instructions if isinstance(i, parser.OFPInstructionActions) for a in i.actions]
    return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]


def _unmark_first(dp, config: ControllerConfig, inspect: list) -> list:
    """A SYN's instructions with conntrack offload: first commit it to the
    run's zone with mark 0, then *inspect* (to the middlebox).

    Why: a new connection on the 5-tuple of one the middlebox allowed would
    otherwise find the old connection's entry, and its mark, in the tracker
    (the SYN itself skips the lookup), so its request could pass uninspected
    (issue 33: 4 of 20 of Geneva's fake-SYN/ACK trials). Committed, the SYN
    ends an old entry that is closing or closed (Open vSwitch's tracker
    starts a new connection on a SYN after a RST or both FINs) and the new
    entry carries mark 0 until the middlebox tags a frame of the new flow.
    A SYN into an entry still established is invalid and not committed;
    the new connection's other segments are then outside the old window and
    invalid too, which sends them to the middlebox (table 2)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    unmark = parser.NXActionCT(flags=NX_CT_COMMIT, zone_src="", zone_ofs_nbits=config.ct_zone,
                               recirc_table=NX_CT_NO_RECIRC, alg=0, actions=[parser.OFPActionSetField(ct_mark=0)])
    actions = [unmark] + [a for i in inspect if isinstance(i, parser.OFPInstructionActions) for a in i.actions]
    return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] + \
        [i for i in inspect if isinstance(i, parser.OFPInstructionGotoTable)]


def delete_cookie(dp, cookie: int, table: int | None = None):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(dp, cookie=cookie, cookie_mask=COOKIE_MASK,
                             table_id=ofp.OFPTT_ALL if table is None else table, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def verdict_flows(dp, verdict: Verdict, meter_ids: tuple[int, int] | None = None,
                  idle_timeout: int = VERDICT_IDLE_TIMEOUT) -> list:
    """FlowMods that enforce one verdict: both directions of the 5-tuple,
    plus the residual 3-tuple block if the rule has one. A throttle gets one
    meter per direction (*meter_ids*: client->server, server->client), as
    Russia's throttler limited upload and download separately. Blocking
    rules have no idle timeout; the others idle out after *idle_timeout*."""
    parser = dp.ofproto_parser
    f = verdict.flow
    proto = number_of(f.transport)
    if proto is None or proto == ICMPV6:
        return []
    if proto in (TCP, UDP) and not f.has_ports:
        return []          # fragments match with ports 0 on the switch: never let a rule catch them
    if verdict.action == "freeze":
        return []          # the middlebox counts the flow's bytes; it sends a drop verdict at the threshold
    action = verdict.action
    goto = parser.OFPInstructionGotoTable(TABLE_FORWARD)
    mods = []
    for direction, (src, sport, dst, dport) in enumerate(((f.client, f.client_port, f.server, f.server_port),
                                                          (f.server, f.server_port, f.client, f.client_port))):
        if action in ("drop", "reset"):
            instructions = []
        elif action == "throttle" and meter_ids is not None:
            instructions = [parser.OFPInstructionMeter(meter_ids[direction]), goto]
        else:                   # allow, log, forge-dns (the forgery races the real answer), probe
            instructions = [goto]
        mods.append(parser.OFPFlowMod(dp, cookie=COOKIE_VERDICT, table_id=TABLE_CENSOR, priority=PRIO_VERDICT,
                                      idle_timeout=0 if action in ("drop", "reset") else idle_timeout,
                                      match=five_tuple(parser, proto, src, sport, dst, dport),
                                      instructions=instructions))
    if verdict.residual and action in ("drop", "reset"):
        mods.append(parser.OFPFlowMod(dp, cookie=COOKIE_RESIDUAL, table_id=TABLE_CENSOR, priority=PRIO_RESIDUAL,
                                      hard_timeout=max(1, int(round(verdict.residual))),
                                      match=three_tuple(parser, proto, f.client, f.server, f.server_port),
                                      instructions=[]))
    return mods


def retract_flows(dp, verdict: Verdict) -> list:
    """FlowMods deleting one flow's verdict rules (both directions of its
    5-tuple, exactly): a new connection on the 5-tuple must be inspected."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    f = verdict.flow
    proto = number_of(f.transport)
    if proto not in (TCP, UDP) or not f.has_ports:
        return []
    return [parser.OFPFlowMod(dp, cookie=COOKIE_VERDICT, cookie_mask=COOKIE_MASK, table_id=TABLE_CENSOR,
                              command=ofp.OFPFC_DELETE_STRICT, priority=PRIO_VERDICT, out_port=ofp.OFPP_ANY,
                              out_group=ofp.OFPG_ANY, match=five_tuple(parser, proto, src, sport, dst, dport))
            for src, sport, dst, dport in ((f.client, f.client_port, f.server, f.server_port),
                                           (f.server, f.server_port, f.client, f.client_port))]


def send_on(dp, config: ControllerConfig, frame: bytes):
    """A frame the middlebox held, through the pipeline as if the middlebox
    had sent it (in_port = its port: table 0 passes it to forwarding).
    Open vSwitch handles one connection's messages in order, so it follows
    any FlowMod sent before it."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=config.middlebox_port,
                               actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=frame)


def residual_flow(dp, block: ResidualBlock, seconds_left: float | None):
    """A residual block: client -> server:port dropped for *seconds_left*
    (None: for the rest of the run). Also re-installs blocks with the time
    they have left after the controller or Open vSwitch restarted."""
    parser = dp.ofproto_parser
    proto = number_of(block.transport) if block.transport in ("tcp", "udp") else 0
    return parser.OFPFlowMod(dp, cookie=COOKIE_RESIDUAL, table_id=TABLE_CENSOR, priority=PRIO_RESIDUAL,
                             hard_timeout=0 if seconds_left is None else max(1, int(round(seconds_left))),
                             match=three_tuple(parser, proto, block.client, block.server, block.server_port),
                             instructions=[])


def meter(dp, meter_id: int, rate_kbit: int):
    """A policer: packets above *rate_kbit* are dropped, from a bucket of
    :func:`tunnelwall.base.policer.burst_kbit` (the inline middlebox
    polices with the same bucket until this meter's rule is in place)."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    burst = burst_kbit(rate_kbit)
    return parser.OFPMeterMod(dp, command=ofp.OFPMC_ADD, flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=meter_id,
                              bands=[parser.OFPMeterBandDrop(rate=rate_kbit, burst_size=burst)])
