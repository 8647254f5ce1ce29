"""Issue 16: the HTML report's charts render in headless Chromium (offline,
no console errors) and the picture shows them."""

import io
import random
import re
import shutil
import subprocess

import pytest

from tunnelwall.harness import report, stats
from tunnelwall.harness.runner import ToolResult

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


def trials() -> list[ToolResult]:
    rng = random.Random(4)
    out = []
    for profile, tool, rate in (("gfw-2022", "shadowsocks", 0.263), ("gfw-2022", "wireguard", 1.0),
                                ("gfw-2025", "stunnel-https", 0.859), ("gfw-2025", "https", 0.0)):
        for trial in range(1, 21):
            blocked = rng.random() < rate
            out.append(ToolResult(tool=tool, profile=profile, outcome="BLOCKED" if blocked else "PASSED",
                                  connected=True, bytes_expected=1000, bytes_through=0 if blocked else 1000,
                                  seconds=0.1, mbit_s=0 if blocked else round(rng.uniform(50, 300), 1),
                                  detected=blocked, rule="x" if blocked else None, trial=trial,
                                  packets_to_detection=rng.randint(1, 20) if blocked else None,
                                  ms_to_detection=rng.uniform(0.1, 80) if blocked else None))
    return out


def test_report_charts_render_offline_without_console_errors(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup.sh"
    pytest.importorskip("matplotlib")
    from PIL import Image
    results = trials()
    summary = stats.summarize(results, 60.0)
    files = report.write_all(results, {"profiles": "gfw-2022,gfw-2025"}, tmp_path, summary)
    page = files["html"].read_text()
    # Offline: nothing to fetch, no scripts.
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page
    url = files["html"].as_uri()
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'p1'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    charts = re.findall(r'<figure class="chart" data-chart="([^"]+)"><svg', dom.stdout)
    assert charts == ["Block rates", "Detection", "Throughput"], charts
    assert "with the 95 % interval" in page          # the axis label (matplotlib keeps text in a comment)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", f"--screenshot={shot}",
                    "--window-size=1100,1400", url], capture_output=True, text=True, timeout=120)
    img = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colours = set(img.getdata())
    # The profiles' bar colours (gfw-2022: blue, gfw-2025: red) are on the picture.
    assert (0x15, 0x65, 0xc0) in colours and (0xc6, 0x28, 0x28) in colours, len(colours)
