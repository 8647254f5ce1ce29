"""CLI error lines and tool definitions; nothing here touches the network."""

import subprocess
import sys
from pathlib import Path

import pytest

from tunnelwall.base.errors import SourceError, TunnelwallError
from tunnelwall.harness import spec

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tunnelwall", *args], capture_output=True, text=True, cwd=ROOT)


def test_validate_catalogue_and_profiles():
    res = cli("validate", "topologies/isp.yaml", "topologies/classroom.yaml", "star:50")
    assert res.returncode == 0 and res.stdout.count(": ok") == 3
    catalogue = sorted((ROOT / "middlebox" / "profiles").glob("*.yaml"))
    assert {"gfw-2020", "gfw-2022", "gfw-2025", "gfw-2025-08-443", "tspu", "tspu-2021", "tspu-2025", "iran-whitelist", "iran-2026",
            "log-only"} <= {p.stem for p in catalogue}
    res = cli("validate", "--profile", *[str(p) for p in catalogue])
    assert res.returncode == 0 and res.stdout.count(": ok") == len(catalogue)


@pytest.mark.parametrize("args,expected", [
    (["validate", "tests/fixtures/bad_topologies/link_unknown_node.yaml"],
     "tests/fixtures/bad_topologies/link_unknown_node.yaml:7: link 'r9-s1': unknown node 'r9'"),
    (["validate", "--profile", "tests/fixtures/bad_profiles/unknown_action.yaml"],
     "tests/fixtures/bad_profiles/unknown_action.yaml:5: rules.0.action: 'block' must be one of"),
    (["validate", "nosuch"], "'nosuch': no such file, and no topology (or star:N), profile, tool or exercise"),
    (["classify", "README.md"], "README.md: not a pcap file"),
    (["classify", "nosuch.pcap"], "nosuch.pcap: cannot read"),
    (["classify", "tests/fixtures/bad_topologies/empty.yaml", "--profile", "nosuch"], "unknown censor profile 'nosuch'"),
])
def test_bad_input_is_one_line_and_nonzero(args, expected):
    res = cli(*args)
    assert res.returncode != 0
    assert expected in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_every_builtin_tool_loads():
    names = spec.builtin()
    assert {"https", "openvpn-udp", "openvpn-tcp", "openvpn-tls-crypt", "wireguard", "shadowsocks", "obfs4",
            "stunnel", "ssh", "v2ray-vmess"} <= set(names)
    for name in names:
        s = spec.load(name)
        assert s.url and s.description


def test_requirements_name_the_missing_kernel_feature(monkeypatch):
    """A tool that needs /dev/ppp on a kernel without PPP: the reason says
    so (an ERROR with a reason, never a BLOCKED)."""
    from tunnelwall.base import kernel
    monkeypatch.setattr(kernel, "available", lambda f: f != "ppp")
    pptp = spec.load("pptp")
    assert "kernel:ppp" in pptp.requires
    reasons = [r for r in pptp.unmet_requirements() if r.startswith("kernel")]
    assert reasons == ["kernel feature 'ppp' (PPP (pppd needs /dev/ppp, module ppp_generic)) is not available "
                       "on this kernel"]
    monkeypatch.setattr(kernel, "available", lambda f: True)
    assert not [r for r in spec.load("pptp").unmet_requirements() if r.startswith("kernel")]


def test_unsupported_tool_is_an_error_with_its_reason(monkeypatch, tmp_path):
    from tunnelwall.base import kernel
    from tunnelwall.base.runstate import RunState
    from tunnelwall.harness import runner
    monkeypatch.setattr(kernel, "available", lambda f: f != "ppp")
    from tunnelwall.base.layout import InterfaceLayout, Layout, NodeLayout
    state = RunState(run_id="t", profile="gfw", log_dir=str(tmp_path), layout=Layout("t", nodes={
        name: NodeLayout(role, f"tw-{name}", i, {"e": InterfaceLayout(f"02:00:00:00:00:0{i}", address)})
        for i, (name, role, address) in enumerate([("c1", "client", "10.0.0.2/24"), ("vpn", "server", "198.18.0.20/24"),
                                                   ("web", "server", "198.18.0.10/24")], 1)}))
    result = runner.run_tool(state, spec.load("l2tp"))
    assert result.outcome == runner.ERROR and result.unsupported
    assert "cannot run here: kernel feature 'ppp'" in result.error


def test_extends_merges_vars():
    tcp = spec.load("openvpn-tcp")
    assert tcp.vars["proto_server"] == "tcp-server" and tcp.vars["net"] == "10.97.0"
    assert tcp.server.run == spec.load("openvpn-udp").server.run


BAD_TOOLS = {
    "missing_traffic.yaml": (1, "missing 'traffic'"),
    "unknown_key.yaml": (3, "unknown top-level key 'sever'"),
    "unknown_variable.yaml": (3, "unknown variable {prot}"),
    "bad_ready.yaml": (4, "server.ready: give one of tcp, udp, log or command"),
    "bad_capture.yaml": (3, "captures.port: log is 'server' or 'client'"),
    "bad_requests.yaml": (4, "traffic: requests must be a whole number 1..20, not '0'"),
    "hostile_name.yaml": (1, "name: '../escape the logs' must be lowercase letters"),
    "unknown_kernel_feature.yaml": (2, "requires: unknown kernel feature 'ppx'"),
}


@pytest.mark.parametrize("name", sorted(BAD_TOOLS))
def test_bad_tool_definitions(name):
    line, words = BAD_TOOLS[name]
    path = FIX / "bad_tools" / name
    with pytest.raises(SourceError) as err:
        spec.load(str(path))
    assert str(err.value).startswith(f"{path}:{line}: ") and words in str(err.value), str(err.value)


def test_unknown_tool_name():
    with pytest.raises(TunnelwallError, match="unknown tool 'nope'"):
        spec.load("nope")


def test_profile_overrides():
    from tunnelwall.middlebox import profiles
    p = profiles.apply_overrides(profiles.load("gfw-2022"), ["fet.probability=1", "fet.residual=5"])
    fet = next(r for r in p.rules if r.name == "fet")
    assert fet.probability == 1.0 and fet.residual == 5.0
    for bad, words in (("fet.probability=2", "bad value"), ("nope.probability=1", "no rule 'nope'"),
                       ("fet.colour=red", "cannot be overridden"), ("fetprobability", "RULE.FIELD=VALUE")):
        with pytest.raises(TunnelwallError, match=words):
            profiles.apply_overrides(profiles.load("gfw-2022"), [bad])


def test_hostile_captured_value_is_refused_before_any_shell_sees_it(tmp_path):
    """A value a running program prints (a tool's output is not trusted) is
    substituted into commands only if no shell would interpret it."""
    from tunnelwall.harness.runner import ToolError, ToolRun
    from tunnelwall.harness.spec import SAFE_VALUE
    for hostile in ("$(touch /tmp/pwned)", "a;b", "`id`", "x y", "a'b", "a\nb", "../.."[:0] or "|"):
        assert not SAFE_VALUE.match(hostile), hostile
    for fine in ("Zm9vYmFy+/=", "198.18.0.20:4433", "AbC-_1,iat-mode=0"):
        assert SAFE_VALUE.match(fine), fine
    tool = tmp_path / "t.yaml"
    tool.write_text("name: t\ncaptures: {secret: {file: out.txt, regex: 'secret=(.*)'}}\n"
                    "traffic: {url: 'http://{web_ip}/{secret}'}\n")
    run = ToolRun.__new__(ToolRun)                      # only the capture step, on a work dir of our own
    run.spec, run.workdir = spec.load(str(tool)), tmp_path
    run.values = {"web_ip": "198.18.0.10"}
    (tmp_path / "out.txt").write_text("secret=$(touch /tmp/pwned)\n")
    with pytest.raises(ToolError, match="not safe in a command"):
        run.capture()
    assert "secret" not in run.values


def test_helper_side_parses_and_its_flows_count_in_either_orientation():
    """tor-snowflake's helper (the volunteer proxy) runs on the web node; the
    censor's "client" of its UDP flow is whichever end sent first, so the
    tool's verdicts include the flow from the proxy to c1, in either
    family, and not a flow between unrelated hosts."""
    from tunnelwall.base.verdict import LoggedVerdict
    from tunnelwall.harness.runner import ToolRun
    tool = spec.load("tor-snowflake")
    assert tool.helper is not None and "snowflake.sh proxy" in tool.helper.run and tool.helper.ready.log
    run = ToolRun.__new__(ToolRun)
    run.spec, run.client, run.server, run.helper = tool, "c1", "vpn", "web"
    run.values = {"client_ip": "10.0.0.11", "server_ip": "198.18.0.20", "web_ip": "198.18.0.10"}
    run.addresses = {"c1": {"10.0.0.11", "fd00:0:0:1::11"}, "vpn": {"198.18.0.20", "2001:db8:18::20"},
                     "web": {"198.18.0.10", "2001:db8:18::10"}}

    def logged(client, server):
        return LoggedVerdict.from_record({"time": 1.0, "flow": {"transport": "udp", "client": client, "client_port": 1,
                                                                 "server": server, "server_port": 2},
                                          "protocol": "dtls", "rule": "snowflake-dtls", "action": "drop",
                                          "packet_index": 3, "ms": 1.0})
    mine = [logged("2001:db8:18::10", "fd00:0:0:1::11"), logged("10.0.0.11", "198.18.0.10"),
            logged("fd00:0:0:1::11", "2001:db8:18::20")]
    others = [logged("10.0.0.12", "198.18.0.10"), logged("198.18.0.10", "10.0.0.12")]
    assert all(lv is not None for lv in mine + others)
    assert run.own(mine + others) == mine


def test_helper_with_an_unknown_variable_is_refused(tmp_path):
    tool = tmp_path / "t.yaml"
    tool.write_text("name: t\nhelper: {run: 'proxy {nosuch}'}\ntraffic: {url: 'http://{web_ip}/'}\n")
    with pytest.raises(SourceError, match=r"unknown variable \{nosuch\}"):
        spec.load(str(tool))
