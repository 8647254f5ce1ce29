"""Issue 30: the tools people use in 2025-2026, built from their Go modules
(tunnelwall/tools/go-tools.txt), each moving 300 kB under log-only and
meeting a censor that has a rule for it. One verify run per test (a
testbed per profile), with the outcome each profile's rules predict."""

import json
from pathlib import Path

import pytest

from conftest import ROOT, assert_nothing_left, tw
from tunnelwall.base import gotools
from tunnelwall.harness import spec

BYTES = "300000"


def runnable(*tools):
    """Skip (saying why) where a tool's Go program is not built: the
    unit tests cover that path; here the tools must run."""
    for tool in tools:
        unmet = spec.load(tool).unmet_requirements()
        if unmet:
            pytest.skip(f"{tool}: {'; '.join(unmet)}")


def verify(tmp_path, profiles, tools, *extra):
    res = tw("verify", "--profile", profiles, "--tools", tools, "--bytes", BYTES, "--seed", "1",
             "--report", str(tmp_path), *extra, timeout=900)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    return res, {(r["profile"], r["tool"]): r for r in results}


def assert_moved(r):
    assert r["outcome"] == "PASSED" and r["bytes_through"] == int(BYTES), r


def vpn_in_a_datacenter(tmp_path) -> Path:
    """tspu-2025 with the vpn server's network on its datacenter list: where
    a VLESS/REALITY server is usually rented (Hetzner, DigitalOcean, OVH)."""
    text = (ROOT / "middlebox" / "profiles" / "tspu-2025.yaml").read_text()
    assert 'datacenters: [198.18.0.10/32, "2001:db8:18::10/128"]' in text
    text = text.replace("name: tspu-2025", "name: tspu-2025-vps").replace(
        'datacenters: [198.18.0.10/32, "2001:db8:18::10/128"]',
        'datacenters: [198.18.0.10/32, 198.18.0.20/32, "2001:db8:18::10/128", "2001:db8:18::20/128"]')
    path = tmp_path / "tspu-2025-vps.yaml"
    path.write_text(text)
    return path


def test_xray_reality_and_xhttp_move_data_and_freeze_at_16_kb_from_a_datacenter(tmp_path):
    """REALITY's handshake is a real TLS 1.3 handshake with the web server
    (the target); XHTTP is VLESS in HTTP/2 in TLS. Neither is recognised
    under log-only; both are TLS to a listed datacenter for tspu-2025, which
    freezes such a connection after about 16 KB (Cloudflare, 2025-06-26)."""
    runnable("xray-reality", "xray-xhttp")
    profile = vpn_in_a_datacenter(tmp_path)
    # Plain HTTP inside: with the default HTTPS no body byte got through
    # before the freeze (0 bytes, 2026-12-07; the outer and inner handshakes
    # come first), so "some data, then frozen" could not be told from
    # "never connected".
    res, got = verify(tmp_path, f"log-only,{profile}", "xray-reality,xray-xhttp", "--inner", "http")
    for tool in ("xray-reality", "xray-xhttp"):
        assert_moved(got[("log-only", tool)])
        frozen = got[("tspu-2025-vps", tool)]
        assert frozen["outcome"] == "BLOCKED" and frozen["rule"] == "datacenter-freeze", frozen
        # after_bytes 16384 counts the connection's server->client bytes, handshakes
        # included: some body, never more than the 16 KB.
        assert 0 < frozen["bytes_through"] < 16 * 1024, frozen
    assert_nothing_left()


def test_quic_tools_are_dropped_by_the_tspu_and_salamander_is_not(tmp_path):
    """Hysteria2 and TUIC v5 speak QUIC v1: tspu-2025 drops QUIC to foreign
    hosts (rule quic-foreign). Salamander XORs every datagram, so there is
    no QUIC Initial to recognise, and no rule of tspu-2025 applies."""
    runnable("hysteria2", "tuic", "hysteria2-salamander")
    res, got = verify(tmp_path, "log-only,tspu-2025", "hysteria2,tuic,hysteria2-salamander")
    for tool in ("hysteria2", "tuic", "hysteria2-salamander"):
        assert_moved(got[("log-only", tool)])
    for tool in ("hysteria2", "tuic"):
        r = got[("tspu-2025", tool)]
        assert r["outcome"] == "BLOCKED" and r["rule"] == "quic-foreign" and r["packets_to_detection"] == 1, r
    assert_moved(got[("tspu-2025", "hysteria2-salamander")])
    assert not got[("tspu-2025", "hysteria2-salamander")]["detected"]
    assert_nothing_left()


def test_shadowsocks_2022_is_fully_encrypted_and_shadowtls_is_tls(tmp_path):
    """Shadowsocks 2022 is fully encrypted from its first byte, so the GFW's
    FET rule of 2021-2023 (Wu et al. 2023; probability forced to 1) blocks
    it; ShadowTLS v3 carries the same Shadowsocks after a real TLS
    handshake with the web server, so the rule's TLS exemption lets it pass."""
    runnable("shadowsocks-2022", "shadowtls")
    res, got = verify(tmp_path, "log-only,gfw-2022", "shadowsocks-2022,shadowtls", "--set", "fet.probability=1")
    assert_moved(got[("log-only", "shadowsocks-2022")])
    assert got[("log-only", "shadowsocks-2022")]["rule"] == "fet"
    assert_moved(got[("log-only", "shadowtls")])
    r = got[("gfw-2022", "shadowsocks-2022")]
    assert r["outcome"] == "BLOCKED" and r["rule"].startswith("fet"), r
    assert_moved(got[("gfw-2022", "shadowtls")])
    assert not got[("gfw-2022", "shadowtls")]["detected"]
    assert_nothing_left()


def test_amneziawg_escapes_the_wireguard_rule_that_blocks_wireguard(tmp_path):
    """tspu-2025 drops WireGuard by its first packet (the 148-byte handshake
    initiation); AmneziaWG's junk datagrams, padded handshake and changed
    message types leave that rule nothing to match, beside plain WireGuard
    in the same run, which it blocks. AmneziaWG 2.0's header ranges and
    transport padding also leave the GFW profiles' OpenVPN opcode test
    nothing (fixed header values do not: test_amneziawg_bytes.py)."""
    runnable("amneziawg", "amneziawg-2")
    res, got = verify(tmp_path, "log-only,tspu-2025,gfw-2025", "amneziawg,amneziawg-2,wireguard")
    for tool in ("amneziawg", "amneziawg-2"):
        assert_moved(got[("log-only", tool)])
        assert got[("log-only", tool)]["rule"] != "wireguard"
        assert_moved(got[("tspu-2025", tool)])
        assert not got[("tspu-2025", tool)]["detected"]
    r = got[("tspu-2025", "wireguard")]
    assert r["outcome"] == "BLOCKED" and r["rule"] == "wireguard", r
    assert_moved(got[("gfw-2025", "amneziawg-2")])
    assert not got[("gfw-2025", "amneziawg-2")]["detected"]
    assert_nothing_left()


def test_go_tools_are_listed_runnable():
    res = tw("tools", "--format", "json")
    rows = {r["tool"]: r for r in json.loads(res.stdout)}
    new = ("xray-reality", "xray-xhttp", "hysteria2", "hysteria2-salamander", "tuic", "shadowsocks-2022", "shadowtls",
           "amneziawg", "amneziawg-2", "tor-snowflake", "tor-webtunnel")
    built = all(gotools.is_built(t) for t in gotools.pins().values())
    for tool in new:
        assert tool in rows
        if built:
            assert rows[tool]["runs_here"], rows[tool]


def test_snowflake_carries_tor_and_tspu_2025_drops_its_dtls_hello(tmp_path):
    """The whole Snowflake system in the testbed (issue 30): the client on
    c1 asks the broker (HTTPS, vpn server) for a proxy, meets the volunteer
    proxy on the web node over ICE (the testbed's STUN server), DTLS and
    SCTP, and the proxy relays to the Snowflake bridge of the private Tor
    network. Under log-only the censor sees the proxy's DTLS ClientHello
    (pion/dtls's default fingerprint) and 300 kB come through Tor; tspu-2025
    drops that hello by its JA4 (net4people/bbs 603, from 2026-03-30), so
    no proxy ever reaches the client and Tor never bootstraps."""
    runnable("tor-snowflake")
    res, got = verify(tmp_path, "log-only,tspu-2025", "tor-snowflake")
    passed = got[("log-only", "tor-snowflake")]
    assert_moved(passed)
    hellos = [v for v in passed["verdicts"] if v["protocol"] == "dtls" and v["flow"]["transport"] == "udp"]
    assert hellos, passed["verdicts"]
    blocked = got[("tspu-2025", "tor-snowflake")]
    assert blocked["outcome"] == "BLOCKED" and blocked["rule"] == "snowflake-dtls", blocked
    assert blocked["bytes_through"] == 0
    assert_nothing_left()


def test_webtunnel_carries_tor_and_todays_gfw_sees_tls_inside_its_tls(tmp_path):
    """WebTunnel (v0.0.3): Tor's link TLS inside an HTTPS connection to the
    bridge (an HTTP Upgrade at a secret path). log-only lets 300 kB through;
    gfw-2025's TLS-in-TLS rule (Xue et al. 2024) catches the inner Tor
    handshake, as it catches any TLS tunnel carrying TLS."""
    runnable("tor-webtunnel")
    res, got = verify(tmp_path, "log-only,gfw-2025", "tor-webtunnel")
    assert_moved(got[("log-only", "tor-webtunnel")])
    r = got[("gfw-2025", "tor-webtunnel")]
    assert r["outcome"] == "BLOCKED" and r["rule"] == "tls-in-tls", r
    assert_nothing_left()
