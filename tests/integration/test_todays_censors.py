"""Issue 14 on the live testbed: today's censors' detections with real tools."""

from __future__ import annotations

import pytest
from conftest import assert_nothing_left, in_node, tw

from tunnelwall.base.runstate import active_run
from tunnelwall.controller.verdictlog import read as read_verdicts
from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, PASSED, RunOptions, run_tool


@pytest.fixture
def run(request):
    tw("up", "isp", *request.param)
    yield active_run()
    tw("down")
    assert_nothing_left()


@pytest.mark.parametrize("run", [["--profile", "gfw-2025", "--set", "tls-in-tls.probability=1"]], indirect=True)
def test_tls_in_tls_blocked_while_https_passes(run):
    """Issue 27: Trojan and VMess over WebSocket+TLS carrying HTTPS (the
    harness's default traffic: a 1 kB request, then 300 kB) are caught by
    the sliding TLS-in-TLS detector, behind Trojan's header and the
    WebSocket upgrade, and Shadowsocks with simple-obfs tls by the data its
    fake outer handshake carries (the inner ClientHello in the session
    ticket, the inner server flight in an oversized Finished); 200 direct
    HTTPS fetches of the same sizes from the same client (half on one
    kept-alive connection) all pass."""
    for tool in ("trojan", "v2ray-vmess-wss", "shadowsocks-obfs-tls"):
        wrapped = run_tool(run, spec.load(tool), RunOptions(bytes=300_000))
        assert wrapped.outcome == BLOCKED and wrapped.rule == "tls-in-tls", (tool, wrapped.error, wrapped.log)
    sizes = " ".join(str(1000 if i % 2 else 300_000) for i in range(100))
    script = (f"for n in {sizes}; do curl -gsk -o /dev/null -o /dev/null -w '%{{size_download}} %{{http_code}}\\n' "
              f"--max-time 20 https://198.18.0.10/bytes/1000 https://198.18.0.10/bytes/$n; done")
    res = in_node("c1", script, timeout=600)
    lines = res.stdout.split()
    got = [(int(lines[i]), lines[i + 1]) for i in range(0, len(lines), 2)]
    expected = [(size, "200") for n in sizes.split() for size in (1000, int(n))]
    assert got == expected, res.stderr[-500:]
    log = read_verdicts(run.files.verdict_log)
    hits = [v for v in log if v.get("rule") == "tls-in-tls"]
    ports = {v["flow"]["server_port"] for v in hits}
    assert 8443 in ports and 8389 in ports and ports <= {8443, 8389}, ports    # never the direct HTTPS (443)
    assert {h["detection"]["detail"]["model"] for h in hits} <= {"curl", "python", "go", "chromium"}


def fetch(node: str, url: str) -> tuple[int, str]:
    res = in_node(node, f"curl -gsk -o /dev/null -w '%{{size_download}} %{{http_code}}' --max-time 8 {url}", timeout=30)
    size, _, code = res.stdout.strip().partition(" ")
    return int(size or 0), code


@pytest.mark.parametrize("run", [["--profile", "tspu-2025"]], indirect=True)
def test_tspu_freezes_tls_to_a_listed_datacenter_near_16_kb(run):
    listed, _code = fetch("c1", "https://198.18.0.10/bytes/200000")
    assert listed < 200_000                       # the transfer stalled (silently: no RST, curl timed out)
    unlisted, code = fetch("c1", "https://198.18.0.20/bytes/200000")
    assert (unlisted, code) == (200_000, "200")
    log = read_verdicts(run.files.verdict_log)
    frozen = [v for v in log if v.get("rule") == "datacenter-freeze"]
    assert [v["action"] for v in frozen] == ["freeze", "drop"]
    assert all(v["flow"]["server"] == "198.18.0.10" for v in frozen)
    # What the server got through before the freeze: 16 KB and at most one segment more.
    passed = int(frozen[1]["note"].split("frozen: ")[1].split(" ")[0])
    assert 16_384 <= passed < 16_384 + 1_500


@pytest.mark.parametrize("run", [["--profile", "gfw-2025"]], indirect=True)
def test_real_tor_client_to_a_bridge_is_detected_probed_and_blocked(run, tmp_path):
    """tor 0.4.9 as a bridge on vpn and as a client on c1 (UseBridges): the
    client's link handshake looks like Tor (a www.<base32>.com SNI without
    ALPN, and tor's own cipher suites and groups), the prober speaks Tor's
    link protocol to the bridge, the bridge answers, and the bridge's port
    is blocked for everyone."""
    import shutil
    import subprocess
    import time
    from pathlib import Path
    if shutil.which("tor") is None:
        pytest.fail("tor is not installed: scripts/setup.sh installs it")
    conf = {"bridge": ["BridgeRelay 1", "ORPort 198.18.0.20:9001", "PublishServerDescriptor 0", "AssumeReachable 1",
                       "ExitRelay 0", "SocksPort 0"],
            "client": ["UseBridges 1", "Bridge 198.18.0.20:9001", "SocksPort 127.0.0.1:9050"]}
    procs = []
    try:
        for role, node in (("bridge", "vpn"), ("client", "c1")):
            data = tmp_path / role
            data.mkdir(mode=0o700)
            (tmp_path / f"{role}.conf").write_text("\n".join([f"DataDirectory {data}", "Log notice stdout",
                                                               *conf[role]]) + "\n")
            log = open(tmp_path / f"{role}.log", "w")
            procs.append(subprocess.Popen(["ip", "netns", "exec", f"tw-{node}", "tor", "-f",
                                           str(tmp_path / f"{role}.conf")], stdout=log, stderr=subprocess.STDOUT))
            if role == "bridge":
                deadline = time.monotonic() + 30
                while "Opened OR listener" not in (tmp_path / "bridge.log").read_text():
                    assert time.monotonic() < deadline, (tmp_path / "bridge.log").read_text()[-2000:]
                    time.sleep(0.1)
        verdicts = Path(run.files.verdict_log)
        deadline = time.monotonic() + 40
        while not any(v.get("type") == "probe" and v.get("confirmed") for v in read_verdicts(verdicts)):
            assert time.monotonic() < deadline, (tmp_path / "client.log").read_text()[-2000:]
            time.sleep(0.2)
        log = read_verdicts(verdicts)
        suspicion = next(v for v in log if v.get("rule") == "tor" and v.get("action") == "probe")
        sni = suspicion["detection"]["detail"]["sni"]
        assert sni.startswith("www.") and sni.endswith((".com", ".net"))
        assert suspicion["detection"]["signal"] in ("tls-fingerprint", "random-sni")
        probe = next(v for v in log if v.get("type") == "probe")
        assert probe["fingerprint"] == "tor" and probe["server_port"] == 9001
        # The bridge is now blocked for every client, not only c1.
        res = in_node("c2", "timeout 5 bash -c 'echo > /dev/tcp/198.18.0.20/9001' && echo open || echo closed")
        assert res.stdout.strip() == "closed"
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
