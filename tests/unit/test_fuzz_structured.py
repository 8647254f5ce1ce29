"""Structured fuzzing (issue 34), the short run: valid QUIC/TLS/DTLS/
WireGuard/OpenVPN messages with mutated plaintext, re-encrypted and
re-framed, through every classifier and the engine, each input with a
work budget and a CPU bound; and the regression corpus replayed. The long
run is ``benchmarks/fuzz.py``."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzzing import FuzzInput, Finding, corpus, run_input, strategies, structured_input
from tunnelwall.middlebox import budget
from tunnelwall.middlebox.classifiers.base import C2S, Classifier
from tunnelwall.middlebox.classifiers.quic import QUIC, open_initial
from builders import run


def report(inp: FuzzInput, findings: list[Finding]) -> str:
    return ("; ".join(f"{f.what} in {f.where}: {f.detail}" for f in findings)
            + f"\nkeep it in tests/fuzz_corpus/ (fuzzing.save) to replay it:\n{inp.to_json()}")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_no_input_crashes_or_overruns_any_parser(rng):
    inp = structured_input(rng)
    findings, _cpu = run_input(inp)
    assert not findings, report(inp, findings)


QUIC_INITIALS, TLS_CLIENT_HELLOS = strategies()


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(QUIC_INITIALS, TLS_CLIENT_HELLOS))
def test_field_by_field_quic_and_tls_inputs(inp):
    """The same, from strategies built field by field, which hypothesis
    shrinks to a small input when one fails."""
    findings, _cpu = run_input(inp, engines=0)
    assert not findings, report(inp, findings)


def test_the_regression_corpus_replays_clean():
    replayed = corpus()
    assert len(replayed) >= 3              # the datagram and its relatives at least
    for path, inp in replayed:
        findings, _cpu = run_input(inp)
        assert not findings, f"{path.name}: " + report(inp, findings)


def test_generated_quic_initials_get_past_the_aead():
    """The point of building inputs rather than drawing bytes: about 40 % of
    the QUIC inputs authenticate (the rest have another version, a
    connection ID too long or bytes changed after protection, on purpose),
    and the classifier reads a ClientHello in many."""
    rng = random.Random(7)
    inputs = []
    while len(inputs) < 200:
        inp = structured_input(rng)
        if inp.kind == "quic":
            inputs.append(inp)
    opened = sum(open_initial(inp.packets[0][1]) is not None for inp in inputs)
    read = sum(getattr(run(QUIC(), [(C2S, inp.packets[0][1])], cport=50000)[0], "protocol", None) == "quic"
               for inp in inputs)
    assert opened >= 60 and read >= 30, (opened, read)     # random bytes: none


class Looping(Classifier):
    name = "looping"

    def update(self, state, flow, pkt, direction):
        while True:                       # what the budget is for
            budget.spend(1, "a loop that never advances")


class Raising(Classifier):
    name = "raising"

    def update(self, state, flow, pkt, direction):
        return pkt.payload[10_000]


@pytest.mark.parametrize("clf, what", [(Looping(), "budget"), (Raising(), "exception")])
def test_the_fuzzer_catches_a_loop_and_a_crash(clf, what):
    inp = structured_input(random.Random(1))
    findings, _ = run_input(inp, classifiers=[clf], engines=False)
    assert [(f.what, f.where) for f in findings] == [(what, clf.name)]
