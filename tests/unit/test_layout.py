"""The typed layout (planned once, kept in the run state), the run state's
named fields and their JSON forms, and the backend interface."""

import json

import pytest

from tunnelwall import topologies
from tunnelwall.base import runstate
from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.layout import Layout
from tunnelwall.topologies.backend import Backend, NetworkStatus
from tunnelwall.topologies.layout import plan_layout
from tunnelwall.topologies.mininet_backend import MininetBackend

C1, CENSOR, S1 = "02:74:77:00:01:00", "02:74:77:00:02:00", "02:74:77:00:03:00"


def test_minimal_layout_names_macs_and_ports_exactly():
    layout = plan_layout(topologies.resolve("minimal"), controlled=True, scope="", datapath="kernel")
    assert layout.to_json() == {
        "topology": "minimal",
        "nodes": {
            "c1": {"role": "client", "netns": "tw-c1", "index": 1, "gateway": None, "gateway6": None,
                   "interfaces": {"eth0": {"mac": C1, "address": "10.0.0.11/24", "address6": "fd00::11/64",
                                           "peer": "border"}}},
            "censor": {"role": "middlebox", "netns": "tw-censor", "index": 2, "gateway": None, "gateway6": None,
                       "interfaces": {"eth0": {"mac": CENSOR, "address": None, "address6": None, "peer": "border"}}},
            "s1": {"role": "server", "netns": "tw-s1", "index": 3, "gateway": None, "gateway6": None,
                   "interfaces": {"eth0": {"mac": S1, "address": "10.0.0.20/24", "address6": "fd00::20/64",
                                           "peer": "border"}}}},
        "switches": {"border": {"bridge": "tw-border", "dpid": 1, "role": "border-switch", "controlled": True, "ports": {
            "1": {"iface": "tw-border-1", "mac": "02:74:77:ff:01:01", "peer": "c1", "peer_mac": C1,
                  "peer_ips": ["10.0.0.11", "fd00::11"], "peer_role": "client"},
            "2": {"iface": "tw-border-2", "mac": "02:74:77:ff:01:02", "peer": "censor", "peer_mac": CENSOR,
                  "peer_ips": [], "peer_role": "middlebox"},
            "3": {"iface": "tw-border-3", "mac": "02:74:77:ff:01:03", "peer": "s1", "peer_mac": S1,
                  "peer_ips": ["10.0.0.20", "fd00::20"], "peer_role": "server"}}}},
        "links": [{"ends": [{"node": n, "iface": "eth0", "port": None, "mac": mac},
                            {"node": "border", "iface": f"tw-border-{p}", "port": p, "mac": f"02:74:77:ff:01:0{p}"}],
                   "bandwidth_mbit": None} for p, (n, mac) in enumerate([("c1", C1), ("censor", CENSOR), ("s1", S1)], 1)],
        "datapath": "kernel"}
    border = layout.switches["border"]
    assert border.ports_to("censor") == [2] and border.ports[3].peer_mac == S1
    assert layout.by_role("client") == ["c1"] and layout.nodes["s1"].interfaces["eth0"].ip6 == "fd00::20"


@pytest.mark.parametrize("name", [*topologies.catalogue(), "star:12"])
def test_every_layout_survives_its_json_form(name):
    for controlled, scope in ((False, ""), (True, "z")):
        layout = plan_layout(topologies.resolve(name), controlled=controlled, scope=scope)
        text = json.dumps(layout.to_json())
        again = Layout.from_json(json.loads(text))
        assert again == layout and json.dumps(again.to_json()) == text


def test_run_state_keeps_its_named_fields(dirs):
    state = runstate.new_run("minimal", "gfw-2025", scope="")
    state.layout = plan_layout(topologies.resolve("minimal"), controlled=True, datapath="kernel")
    state.datapath, state.ct_zone, state.placement, state.up_seconds = "kernel", 29000, "tap", 3.5
    state.api = runstate.ApiEndpoint(port=4242, token_file="/x/api-token")
    state.files = runstate.RunFiles(verdict_log="/x/verdicts.jsonl", socket="/run/x.sock")
    state.save()
    again = runstate.RunState.load(state.path)
    assert again == state
    assert again.netns_of("c1") == "tw-c1" and list(again.nodes) == ["c1", "censor", "s1"]


def test_run_state_before_deploy_has_no_layout(dirs):
    state = runstate.new_run("minimal", None, scope="")
    again = runstate.RunState.load(state.path)
    assert again.layout is None and again.nodes == {} and again.api is None
    assert again.netns_of("c1") == "tw-c1"


def test_a_run_state_in_the_previous_format_still_reads(dirs):
    """A run brought up before the fields were named can be brought down."""
    layout = plan_layout(topologies.resolve("minimal"), controlled=True).to_json()
    old = {"run_id": "20260101-000000-abcd", "scope": "", "topology": "minimal", "profile": "log-only",
           "status": "up", "created": 1.0, "owner_pid": 1, "log_dir": "/tmp/x", "netns": ["tw-c1"], "bridges": [],
           "root_ifaces": [], "containers": [], "processes": [], "layout": layout,
           "api": {"port": 4242, "token_file": "/x/api-token"},
           "files": {"datapath": "kernel", "ct_zone": 29001, "verdict_log": "/x/verdicts.jsonl",
                     "socket": "/run/x.sock", "placement": "inline", "controller_config": "/x/controller.json",
                     "up_seconds": 2.5, "exercise": "find-blocked"}}
    runstate.STATE_DIR.mkdir(parents=True)
    (runstate.STATE_DIR / f"{old['run_id']}.json").write_text(json.dumps(old))
    (state,) = runstate.all_runs()
    assert (state.datapath, state.ct_zone, state.placement, state.up_seconds, state.exercise) == \
        ("kernel", 29001, "inline", 2.5, "find-blocked")
    assert state.files == runstate.RunFiles("/x/verdicts.jsonl", "/run/x.sock", "/x/controller.json")
    assert state.api.port == 4242 and state.backend == "mininet"
    assert state.layout.switches["border"].ports[2].peer == "censor"


def test_the_run_names_its_backend():
    state = runstate.RunState(run_id="x")
    backend = topologies.backend_for(state)
    assert isinstance(backend, MininetBackend) and isinstance(backend, Backend) and backend.state is state
    state.backend = "kathara"
    with pytest.raises(TunnelwallError, match="unknown backend 'kathara' \\(known: mininet\\)"):
        topologies.backend_for(state)


def test_network_status_says_complete_and_gone():
    assert NetworkStatus(present={"netns": ["tw-c1"]}, missing={"netns": []}).complete
    partial = NetworkStatus(present={"netns": ["tw-c1"]}, missing={"bridges": ["tw-border"]})
    assert not partial.complete and not partial.gone
    assert NetworkStatus(present={"netns": []}, missing={"netns": ["tw-c1"]}).gone
