"""Link conditions (issue 18): the YAML keys with FILE:LINE errors, the
choice between netem and the userspace relay, and the relay's conditioner."""

from __future__ import annotations

import random

import pytest

from tunnelwall.base.errors import SourceError
from tunnelwall.topologies import loader
from tunnelwall.base.layout import RelayEnd
from tunnelwall.topologies.layout import conditions_mode, plan_layout
from tunnelwall.topologies.model import LinkConditions
from tunnelwall.topologies.relay import Conditioner

BASE = """name: t
nodes:
  c1: {role: client, ip: 10.0.0.1/24}
  s1: {role: server, ip: 10.0.0.2/24}
  sw: {role: switch}
links:
  - endpoints: ["c1:eth0", "sw"]
"""


def load(link: str):
    return loader.loads(BASE + link, "t.yaml")


def test_conditions_are_parsed_with_units():
    topo = load('  - {endpoints: ["s1:eth0", "sw"], delay: 150ms, jitter: 0.002s, loss: 1%, duplicate: 0.005,\n'
                '     loss_burst: {p: 2%, r: 30%}, jitter_distribution: normal}\n')
    c = topo.links[1].conditions
    assert c == LinkConditions(delay_ms=150.0, jitter_ms=2.0, jitter_distribution="normal", loss=0.01,
                               loss_burst=(0.02, 0.3), duplicate=0.005)
    assert topo.links[0].conditions is None


@pytest.mark.parametrize("link,line,words", [
    ('  - endpoints: ["s1:eth0", "sw"]\n    delay: fast\n', 9, "delay 'fast' is not a duration"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    loss: 120%\n', 9, "loss '120%' is not a probability"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    delay: 5ms\n    jitter: 9ms\n', 10, "jitter is larger than the delay"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    loss_burst: {p: 1%}\n', 9, "loss_burst"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    delay: 20s\n', 9, "longer than 10 s"),
])
def test_bad_conditions_name_file_and_line(link, line, words):
    with pytest.raises(SourceError) as err:
        load(link)
    assert str(err.value).startswith(f"t.yaml:{line}: ") and words in str(err.value), str(err.value)


def test_netem_where_the_kernel_has_it_and_it_can_do_it_else_the_relay():
    plain = LinkConditions(delay_ms=50.0, loss=0.01)
    assert conditions_mode(plain, netem=True) == "netem"
    assert conditions_mode(plain, netem=False) == "relay"
    bursty = LinkConditions(delay_ms=50.0, loss_burst=(0.01, 0.25))
    assert conditions_mode(bursty, netem=True) == "relay"          # Mininet's TCLink cannot pass it to netem


def test_layout_puts_the_relay_at_the_node_end():
    topo = load('  - {endpoints: ["sw", "s1:eth0"], delay: 50ms}\n')
    link = plan_layout(topo).links[1]
    assert link.relay == RelayEnd("s1", "eth0") and link.conditions == {"delay_ms": 50.0}
    assert link.conditions_by in ("netem", "relay")


def test_conditioner_delay_jitter_loss_duplicate_reorder():
    frame = bytes(14) + b"payload"
    c = Conditioner({"delay_ms": 50.0, "jitter_ms": 5.0}, random.Random(1))
    delays = [c.process(frame)[0][0] for _ in range(2000)]
    assert 0.045 <= min(delays) and max(delays) <= 0.055
    assert abs(sorted(delays)[1000] - 0.050) < 0.001
    lossy = Conditioner({"loss": 0.1}, random.Random(2))
    kept = sum(len(lossy.process(frame)) for _ in range(10000))
    assert 8850 < kept < 9150                                       # 10 % loss, 3.5 sd
    dup = Conditioner({"duplicate": 0.5}, random.Random(3))
    assert 14500 < sum(len(dup.process(frame)) for _ in range(10000)) < 15500
    reorder = Conditioner({"delay_ms": 10.0, "reorder": 0.25}, random.Random(4))
    immediate = sum(1 for _ in range(4000) if reorder.process(frame)[0][0] == 0.0)
    assert 900 < immediate < 1100
    corrupt = Conditioner({"corrupt": 1.0}, random.Random(5))
    out = corrupt.process(frame)[0][1]
    assert out[:14] == frame[:14] and bin(int.from_bytes(out, "big") ^ int.from_bytes(frame, "big")).count("1") == 1


def test_gilbert_elliott_losses_come_in_bursts():
    c = Conditioner({"loss_burst": (0.01, 0.25)}, random.Random(6))
    kept = [bool(c.process(b"x" * 20)) for _ in range(200_000)]
    lost = kept.count(False) / len(kept)
    assert abs(lost - 0.01 / (0.01 + 0.25)) < 0.01                  # stationary loss p / (p + r) = 3.8 %
    runs, run = [], 0
    for k in kept:
        if not k:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert abs(sum(runs) / len(runs) - 1 / 0.25) < 0.3               # mean burst 1 / r = 4 packets


def test_conditions_per_direction_override_the_link_and_need_the_relay():
    topo = load('  - endpoints: ["s1:eth0", "sw"]\n    delay: 10ms\n    to_node: {delay: 40ms, loss: 2%}\n')
    c = topo.links[1].conditions
    assert c.delay_ms == 10.0 and c.to_node == LinkConditions(delay_ms=40.0, loss=0.02) and c.from_node is None
    assert conditions_mode(c, netem=True) == "relay"
    from tunnelwall.topologies.relay import one_way
    d = c.as_dict()
    assert one_way(d, "from_node") == {"delay_ms": 10.0}
    assert one_way(d, "to_node") == {"delay_ms": 40.0, "loss": 0.02}
    with pytest.raises(SourceError, match="t.yaml:9: .*to_node is a mapping of conditions for one direction"):
        load('  - endpoints: ["s1:eth0", "sw"]\n    to_node: {to_node: {delay: 1ms}}\n')


@pytest.mark.parametrize("link,line,words", [
    # One direction's conditions: the schema checks only that it is a mapping, the loader the rest.
    ('  - endpoints: ["s1:eth0", "sw"]\n    from_node: {jitter_distribution: odd}\n', 9,
     "jitter_distribution is uniform or normal"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    to_node: {loss_burst: {p: 1%}}\n', 9, "loss_burst is {p: GOOD_TO_BAD"),
    ('  - endpoints: ["s1:eth0", "sw"]\n    to_node: {colour: red}\n', 9, "to_node is a mapping of conditions"),
    # The top level's are the schema's.
    ('  - endpoints: ["s1:eth0", "sw"]\n    jitter_distribution: odd\n', 9,
     "links.1.jitter_distribution: 'odd' must be one of: uniform, normal"),
])
def test_one_directions_conditions_are_checked_like_the_links(link, line, words):
    with pytest.raises(SourceError) as err:
        load(link)
    assert str(err.value).startswith(f"t.yaml:{line}: ") and words in str(err.value), str(err.value)
