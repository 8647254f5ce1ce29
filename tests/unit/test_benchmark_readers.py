"""What the benchmarks read off the switch: ``pmd-stats-show``'s counters,
summed over its threads, and their differences per connection."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "procinfo", Path(__file__).resolve().parents[2] / "benchmarks" / "procinfo.py")
procinfo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(procinfo)

# Open vSwitch 3.1's output, a main thread and one PMD thread.
PMD_STATS = """\
pmd thread numa_id 0 core_id 1:
  packets received: 100
  packet recirculations: 7
  avg. datapath passes per packet: 1.07
  phwol hits: 0
  mfex opt hits: 0
  simple match hits: 0
  emc hits: 40
  smc hits: 0
  megaflow hits: 66
  avg. subtable lookups per megaflow hit: 2.34
  miss with success upcall: 1
  miss with failed upcall: 0
  avg. packets per output batch: 1.30
  idle cycles: 1234 (90.00%)
  processing cycles: 137 (10.00%)
main thread:
  packets received: 33059
  packet recirculations: 8016
  avg. datapath passes per packet: 1.24
  emc hits: 67
  smc hits: 0
  megaflow hits: 41008
  avg. subtable lookups per megaflow hit: 2.34
  miss with success upcall: 0
  miss with failed upcall: 2
  avg. packets per output batch: 1.36
"""


def test_pmd_stats_counters_are_summed_over_threads_and_averages_left_out():
    assert procinfo.parse_pmd_stats(PMD_STATS) == {
        "received": 33159, "recirculations": 8023, "emc_hits": 107, "smc_hits": 0,
        "megaflow_hits": 41074, "upcalls": 1, "failed_upcalls": 2}


def test_no_datapath_reads_as_zeros():
    assert set(procinfo.parse_pmd_stats("")) == set(procinfo.DATAPATH_COUNTERS.values())
    assert not any(procinfo.parse_pmd_stats("please specify an existing datapath\n").values())


def test_per_connection_difference_counts_a_recirculation_as_a_pass():
    before = procinfo.parse_pmd_stats("")
    after = procinfo.parse_pmd_stats(PMD_STATS)
    per = procinfo.datapath_per(before, after, 1000)
    assert per["received"] == 33.16 and per["recirculations"] == 8.02 and per["passes"] == 41.18
