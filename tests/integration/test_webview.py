"""Issue 8: the live web view, loaded in headless Chromium during a run,
shows a blocked flow as it happens."""

import re
import shutil
import subprocess
import urllib.request

from conftest import assert_nothing_left, tw

from tunnelwall.harness import spec
from tunnelwall.harness.runner import BLOCKED, run_tool
from tunnelwall.harness.verify import _post_result
from tunnelwall.base.runstate import active_run

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000", "--dump-dom"]


def test_live_view_shows_a_blocked_flow(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup.sh"
    tw("up", "isp", "--profile", "gfw-2022")
    try:
        state = active_run()
        result = run_tool(state, spec.load("wireguard"))
        assert result.outcome == BLOCKED
        _post_result(state, result)
        token = open(state.api.token_file).read().strip()
        url = f"http://127.0.0.1:{state.api.port}/"
        page = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "tunnelwall: live censor view" in page and "http" not in page.split("<script>")[1].split("fetch(")[0]
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              f"{url}?token={token}"], capture_output=True, text=True, timeout=120).stdout
        assert re.search(r'<tr class="drop" data-rule="wireguard">', dom), dom[-2000:]
        assert "middlebox connected" in dom and "switch connected" in dom
        assert 'class="result BLOCKED"' in dom                       # the per-tool chart
        assert "<circle" in dom and "censor" in dom                  # the topology graph
        assert "2001:db8:18::10" in dom                               # with the IPv6 addresses, as tunnelwall graph
        # Without the token the page loads but the API refuses it.
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", url],
                             capture_output=True, text=True, timeout=120).stdout
        assert re.search(r'<div id="status">cannot reach the controller API: [^<]*401</div>', dom), dom[:1500]
        assert not re.search(r'<tr class="\w+" data-rule=', dom)
    finally:
        tw("down")
    assert_nothing_left()
