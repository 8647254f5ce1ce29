"""What a tool author's regression tests look like with the tunnelwall
pytest plugin (installed with tunnelwall; the fixtures need root).

Run: sudo .venv/bin/python -m pytest examples/
"""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.integration


@pytest.mark.tunnelwall(profile="gfw-2022")
def test_my_tool_is_not_detected_by_gfw(tunnelwall_testbed):
    result = tunnelwall_testbed.run_tool(HERE / "my-tls-tunnel.yaml")
    assert result.outcome == "PASSED", result.error
    assert not result.detected, f"detected by rule {result.rule} at packet {result.packets_to_detection}"
    assert result.bytes_through == result.bytes_expected


@pytest.mark.tunnelwall(profile="gfw-2022", overrides=["fet.probability=1"])
def test_plain_shadowsocks_is_caught_by_the_fet_rule(tunnelwall_testbed):
    # The counter-example a tool author compares against: a fully encrypted
    # first packet is what the GFW's FET rule blocks (here with certainty).
    result = tunnelwall_testbed.run_tool("shadowsocks")
    assert result.outcome == "BLOCKED"
    assert result.rule == "fet" and result.packets_to_detection <= 4
