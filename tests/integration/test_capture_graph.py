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
        stdout, _ = cap.communicate(timeout=20)
        assert stdout.strip().endswith(str(out))
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
