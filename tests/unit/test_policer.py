"""The throttle's token bucket (base.policer), shared by the switch's meter
(its burst) and the inline middlebox (until the meter's rule is in place)."""

from __future__ import annotations

from tunnelwall.base.policer import Bucket, burst_kbit


def test_the_burst_is_half_a_second_of_the_rate_and_at_least_a_few_packets():
    assert burst_kbit(130) == 65
    assert burst_kbit(1000) == 500
    assert burst_kbit(10) == 64


def test_a_full_bucket_passes_its_burst_then_only_the_rate():
    bucket = Bucket(130, now=100.0)                 # 130 kbit/s: 16,250 bytes/s, depth 65 kbit = 8,125 bytes
    assert [bucket.take(1500, 100.0) for _ in range(6)] == [True] * 5 + [False]   # 5 x 1500 = 7,500 of 8,125
    assert not bucket.take(1500, 100.05)            # +812.5 bytes: 1,437.5 < 1,500
    assert bucket.take(1500, 100.06)                # +975 bytes since 100.0: 1,600
    passed = sum(bucket.take(1500, 101.0 + i * 0.001) for i in range(10_000))   # 10 s of offers
    assert passed * 1500 <= 10.0 * 16_250 + 8_125 and passed * 1500 >= 10.0 * 16_250 - 1500


def test_the_bucket_never_holds_more_than_its_depth():
    bucket = Bucket(130, now=0.0)
    assert bucket.take(8125, 1000.0) and not bucket.take(1, 1000.0)
