"""Issue 18, in part: captures as pcapng on any node, read back by classify."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, TUNNELWALL, assert_nothing_left, in_node, tw, wait_for

from tunnelwall.base.runstate import active_run


def test_capture_a_node_as_pcapng_and_classify_it(tmp_path):
    out = tmp_path / "c1.pcapng"
    tw("up", "isp", "--profile", "log-only")
    try:
        cap = subprocess.Popen(TUNNELWALL + ["capture", "c1:eth0", "-w", str(out), "--seconds", "20"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: out.exists() and out.stat().st_size > 0, 10, "the capture file")
        fetch = in_node("c1", "curl -s -o /dev/null -w '%{http_code}' http://198.18.0.10/bytes/3000")
        assert fetch.stdout == "200"
        wg = in_node("c1", f"{sys.executable} -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                           f"s.sendto(bytes([1,0,0,0]) + bytes(144), ('198.18.0.20', 51820))\"")
        assert wg.returncode == 0
        cap.terminate()                          # Ctrl-C or SIGTERM: the file is complete up to the last frame
        stdout, stderr = cap.communicate(timeout=20)
        assert stdout.strip() == str(out) and cap.returncode == 0, stderr
        assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"          # pcapng section header
        res = tw("classify", str(out), "--profile", "gfw-2022", "--format", "json")
        flows = [json.loads(line) for line in res.stdout.splitlines()[:-1]]
        assert any(f["protocol"] == "http" and f["server_port"] == 80 for f in flows)
        assert any(f["rule"] == "wireguard" and f["server_port"] == 51820 for f in flows)
        state = active_run()
        assert state is not None
        mermaid = tw("graph").stdout
        assert "censor: log-only, inline" in mermaid or "censor: gfw, inline" in mermaid
    finally:
        tw("down")
    assert_nothing_left()


NEAR_FAR = """name: nearfar
censor: {switch: border, middlebox: censor, profile: log-only, placement: inline}
nodes:
  c1: {role: client, ip: 10.0.0.11/24, ip6: "fd00::11/64"}
  border: {role: border-switch}
  censor: {role: middlebox}
  near: {role: server, ip: 10.0.0.20/24, services: [http]}
  far: {role: server, ip: 10.0.0.30/24, services: [http, https]}
  lossy: {role: server, ip: 10.0.0.40/24}
links:
  - endpoints: ["c1:eth0", "border"]
  - endpoints: ["censor:eth0", "border"]
  - endpoints: ["near:eth0", "border"]
  - {endpoints: ["far:eth0", "border"], delay: 25ms, jitter: 1ms, loss: 1%}
  - {endpoints: ["lossy:eth0", "border"], loss: 10%}
"""


def ping_rtts(node: str, target: str, count: int, interval: float = 0.01) -> list[float]:
    res = in_node(node, f"ping -n -c {count} -i {interval} -W 2 {target}", timeout=120)
    return sorted(float(line.split("time=")[1].split(" ")[0]) for line in res.stdout.splitlines() if "time=" in line)


def test_link_conditions_in_userspace_delay_loss_and_a_tool_still_passes(tmp_path):
    from tunnelwall.harness import spec
    from tunnelwall.harness.runner import PASSED, RunOptions, run_tool
    from tunnelwall.harness.stats import wilson
    topo = tmp_path / "nearfar.yaml"
    topo.write_text(NEAR_FAR)
    up = tw("up", str(topo))
    assert "by relay" in up.stdout or "by netem" in up.stdout               # never silently ignored
    try:
        # 25 ms each way at the far server: 50 ms round trip, within a millisecond at the median.
        rtts = ping_rtts("c1", "10.0.0.30", 200)
        assert len(rtts) >= 180 and abs(rtts[len(rtts) // 2] - 50.0) < 1.5, rtts[:5]      # 1 % loss each way
        near = ping_rtts("c1", "10.0.0.20", 50)
        assert near[len(near) // 2] < 5
        # 10 % loss each way: 19 % of pings lost over 500, within the binomial interval.
        res = in_node("c1", "ping -n -q -c 500 -i 0.01 -W 1 10.0.0.40", timeout=120)
        received = int(res.stdout.split(" packets transmitted, ")[1].split(" ")[0])
        lo, hi = wilson(500 - received, 500, z=3.29)                         # 99.9 %
        assert lo <= 1 - 0.9 ** 2 <= hi, received
        # A tool through the delayed, lossy path passes under log-only.
        state = active_run()
        # The https control fetches from the "web" server, here the first server other
        # than the tool's: with the tool's server "near", that is "far".
        result = run_tool(state, spec.load("https"), RunOptions(bytes=500_000, server_node="near"))
        assert result.outcome == PASSED, (result.error, result.log)
        inspect = tw("inspect").stdout
        assert "far-border" in inspect or "border-far" in inspect
    finally:
        tw("down")
    assert_nothing_left()
