"""The prober's probe set and fingerprints (Alice et al. 2020; Frolov et al. 2020)."""

import random

from tunnelwall.middlebox.prober import RANDOM_LENGTHS, Reaction, build_probes, fingerprint


def test_probe_set_follows_the_papers():
    first = bytes(range(200))
    probes = dict(build_probes(first, 16, random.Random(1)))
    assert probes["replay"] == first
    diff = lambda a, b: [i for i in range(len(a)) if a[i] != b[i]]  # noqa: E731
    assert diff(probes["replay-byte0"], first) == [0]
    assert diff(probes["replay-bytes0-7,62-63"], first) == [0, 1, 2, 3, 4, 5, 6, 7, 62, 63]
    assert diff(probes["replay-byte16"], first) == [16]
    assert diff(probes["replay-bytes6,16"], first) == [6, 16]
    assert sorted(len(v) for k, v in probes.items() if k.startswith("random-")) == sorted(RANDOM_LENGTHS)
    assert probes["tls-client-hello"][:3] == b"\x16\x03\x01"
    assert probes["http-get"].startswith(b"GET / HTTP/1.1") and probes["ssh-banner"].startswith(b"SSH-2.0-")
    assert [name for name, _ in build_probes(first, 4, random.Random(1))] == \
        ["replay", "random-8", "random-221", "tls-client-hello"]
    assert "replay" not in dict(build_probes(None, 16, random.Random(1)))   # nothing to replay


def r(sent, kind, received=0):
    return Reaction(f"p{sent}", sent, kind, received)


def test_fingerprints():
    assert fingerprint([r(8, "timeout"), r(221, "data", 365)]) == ("normal", False)
    assert fingerprint([r(8, "timeout"), r(49, "timeout"), r(221, "timeout")]) == ("probe-resistant", True)
    # Older Shadowsocks: silent below 50 bytes, closes at 50 and above.
    assert fingerprint([r(8, "timeout"), r(49, "timeout"), r(50, "fin"), r(221, "fin")]) == ("shadowsocks", True)
    assert fingerprint([r(8, "timeout"), r(49, "rst"), r(33, "timeout"), r(221, "rst")]) == ("shadowsocks", True)
    # Closing at random sizes is no known proxy: not confirmed.
    assert fingerprint([r(8, "fin"), r(49, "timeout"), r(221, "fin")]) == ("silent", False)
    assert fingerprint([r(8, "refused"), r(221, "refused")]) == ("unreachable", False)
