"""Issue 5: 'tunnelwall verify' with real tools against gfw and log-only."""

import json
import xml.etree.ElementTree as ET

from conftest import assert_nothing_left, tw


def test_verify_matrix_gfw_and_log_only(tmp_path):
    res = tw("verify", "--profile", "gfw-2022,log-only", "--tools", "https,openvpn-udp,wireguard,shadowsocks",
             "--set", "fet.probability=1", "--seed", "7", "--report", str(tmp_path),
             "--expect", "gfw-2022/openvpn-udp=BLOCKED", "--expect", "gfw-2022/wireguard=BLOCKED",
             "--expect", "gfw-2022/shadowsocks=BLOCKED", "--expect", "https=PASSED",
             "--expect", "log-only/openvpn-udp=PASSED", "--expect", "log-only/wireguard=PASSED",
             "--expect", "log-only/shadowsocks=PASSED", timeout=900)
    assert "PROFILE" in res.stdout and "[8/8]" in res.stderr      # table, and progress while running
    data = json.loads((tmp_path / "results.json").read_text())
    got = {(r["profile"], r["tool"]): r for r in data["results"]}
    assert got[("gfw-2022", "openvpn-udp")]["rule"] == "openvpn"
    assert got[("gfw-2022", "wireguard")]["rule"] == "wireguard"
    assert got[("gfw-2022", "shadowsocks")]["rule"] == "fet"           # FET with probability forced to 1
    assert got[("gfw-2022", "https")]["outcome"] == "PASSED" and not got[("gfw-2022", "https")]["detected"]
    for tool, rule in (("openvpn-udp", "openvpn"), ("wireguard", "wireguard"), ("shadowsocks", "fet")):
        r = got[("log-only", tool)]
        assert r["outcome"] == "PASSED" and r["detected"] and r["rule"] == rule and r["action"] == "log"
        assert r["mbit_s"] > 0
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) == 8
    assert len(suites.findall(".//testcase/failure")) == 3          # the three BLOCKED under gfw
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "BLOCKED" in html and "<table" in html
    assert_nothing_left()


def test_a_tool_that_will_not_start_is_an_error_not_blocked(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("""name: broken
description: a server that exits at once
server:
  run: "sh -c 'echo cannot bind: address in use >&2; exit 3'"
  ready: {tcp: "9999"}
traffic: {url: "http://{server_ip}:9999/"}
""")
    res = tw("verify", "--profile", "log-only", "--tools", str(broken), "--report", str(tmp_path), check=False)
    assert res.returncode == 1
    data = json.loads((tmp_path / "results.json").read_text())
    r = data["results"][0]
    assert r["outcome"] == "ERROR" and "exited" in r["error"] and "address in use" in r["log"]
    assert "ERROR" in res.stdout and "Traceback" not in res.stderr
    assert_nothing_left()


def test_verify_rejects_bad_input_before_touching_the_network(tmp_path):
    res = tw("verify", "--tools", "nosuchtool", check=False)
    assert res.returncode == 2 and "unknown tool 'nosuchtool'" in res.stderr and "Traceback" not in res.stderr
    res = tw("verify", "--profile", "nosuchprofile", "--tools", "https", check=False)
    assert res.returncode == 2 and "unknown censor profile" in res.stderr
    res = tw("verify", "--tools", "https", "--set", "nosuchrule.probability=1", check=False)
    assert res.returncode == 2 and "has no rule 'nosuchrule'" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntraffic: {url: 'http://{nosuchvar}/'}\n")
    res = tw("verify", "--tools", str(bad), check=False)
    assert res.returncode == 2 and f"{bad}:2: unknown variable {{nosuchvar}}" in res.stderr
    assert_nothing_left()


def test_more_tools_move_data_and_get_past_the_fet_era_gfw(tmp_path):
    """Issue 15, in part: simple-obfs (HTTP and TLS), Trojan and kcptun move
    data under log-only, and get past gfw-2022 as they were built to: their
    first packets look like HTTP or TLS (FET exemption Ex5), or travel over
    UDP, which the FET rule does not read."""
    tools = "shadowsocks-obfs-http,shadowsocks-obfs-tls,trojan,kcptun"
    res = tw("verify", "--profile", "log-only,gfw-2022", "--tools", tools, "--bytes", "300000", "--format", "json",
             "--expect", "shadowsocks-obfs-http=PASSED", "--expect", "shadowsocks-obfs-tls=PASSED",
             "--expect", "trojan=PASSED", "--expect", "kcptun=PASSED", timeout=900)
    out = json.loads(res.stdout)
    assert len(out["results"]) == 8 and all(r["bytes_through"] == 300000 for r in out["results"])
    first = {r["tool"]: r for r in out["results"] if r["profile"] == "gfw-2022"}
    assert "fet" not in {v["rule"] for r in first.values() for v in r["verdicts"]}
