"""Published rates the probabilistic rules carry (reference rows)."""

from __future__ import annotations

from . import Reference

VECTORS = [
    Reference("rates", "FET: share of non-exempt connections blocked", "fet", 0.263,
              "Wu et al., USENIX Security 2023, section 5", ("gfw-2022",)),
    Reference("rates", "TLS-in-TLS: true-positive rate of the detector", "tls-in-tls", 0.859,
              "Xue et al., USENIX Security 2024", ("gfw-2025",),
              note="the rate is drawn per detected connection; whether the burst model detects a given "
                   "tunnel is measured on the testbed (README, TLS-in-TLS), not here"),
]
