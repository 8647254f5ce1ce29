"""JA3 and JA4 fingerprints of a parsed ClientHello (TLS, QUIC, DTLS).

Censors filter by them: Russia's TSPU has dropped Snowflake's default DTLS
ClientHello (pion/dtls) by its JA4 since 2026-03-30, while DTLS 1.3 passes.
Rules match them with ``match: {ja4: [...]}`` or ``{ja3: [...]}``.

* JA3 (Althouse, Atkinson, Atkins; Salesforce 2017): MD5 of
  ``version,ciphers,extensions,groups,point_formats``, each list as decimal
  values joined by ``-``, GREASE values (RFC 8701) left out.
* JA4 (FoxIO, 2023, the ``JA4`` part of JA4+): ``a_b_c`` where ``a`` is the
  transport (``t`` TCP, ``q`` QUIC, ``d`` DTLS), the highest version offered
  (``13``, ``12``, ..., or ``d1``/``d2``/``d3`` for DTLS), ``d`` if an SNI is
  present else ``i``, the number of ciphers and of extensions (two digits
  each, GREASE left out), and the first and last character of the first
  ALPN value (``00`` without ALPN); ``b`` is the first 12 hex digits of the
  SHA-256 of the sorted ciphers (4-digit hex, comma-separated); ``c`` the
  same of the sorted extensions without SNI and ALPN, then ``_`` and the
  signature algorithms in their order.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

TLS_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                0xFEFC: "d3", 0xFEFD: "d2", 0xFEFF: "d1"}


GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))     # RFC 8701: 0x0a0a, 0x1a1a, ..., 0xfafa


def _ja3_fields(hello: dict) -> tuple:
    """What JA3 is made of, as hashable values (the cache key below)."""
    return (hello["version"], tuple(hello["ciphers"]), tuple(hello["extensions"]),
            tuple(hello.get("groups", [])), tuple(hello.get("point_formats", [])))


def ja3_string(hello: dict) -> str:
    return _ja3_text(*_ja3_fields(hello))


def _ja3_text(version: int, ciphers: tuple, extensions: tuple, groups: tuple, point_formats: tuple) -> str:
    def part(values):
        return "-".join([str(v) for v in values if v not in GREASE])
    return ",".join((str(version), part(ciphers), part(extensions), part(groups), part(point_formats)))


# Fingerprints are computed for every ClientHello, but a network's clients
# send few distinct ones (a fingerprint is the client software's), so each
# is made once per distinct set of the fields it is made of: one tuple and
# one lookup instead of some 40 us of formatting and hashing. The caches
# are bounded; results are a pure function of their arguments.
@lru_cache(maxsize=4096)
def _ja3(version: int, ciphers: tuple, extensions: tuple, groups: tuple, point_formats: tuple) -> str:
    return hashlib.md5(_ja3_text(version, ciphers, extensions, groups, point_formats).encode()).hexdigest()


def ja3(hello: dict) -> str:
    return _ja3(*_ja3_fields(hello))


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


def ja4(hello: dict, transport: str) -> str:
    return _ja4(transport, tuple(hello.get("versions") or ()), hello["version"], tuple(hello["ciphers"]),
                tuple(hello["extensions"]), bool(hello["sni"]), hello["alpn"][0] if hello["alpn"] else "",
                tuple(hello.get("sigalgs", ())))


@lru_cache(maxsize=4096)
def _ja4(transport: str, offered: tuple, legacy_version: int, ciphers: tuple, extensions: tuple, sni: bool,
         alpn: str, sigalgs: tuple) -> str:
    versions = [v for v in offered if v not in GREASE]
    if versions:
        # DTLS numbers count down (0xfefd is 1.2, 0xfefc is 1.3): rank by the TLS_VERSIONS order.
        order = list(TLS_VERSIONS)
        best = min(versions, key=lambda v: order.index(v) if v in TLS_VERSIONS else len(order))
    else:
        best = legacy_version
    version = TLS_VERSIONS.get(best, "00")
    ciphers = [c for c in ciphers if c not in GREASE]
    extensions = [e for e in extensions if e not in GREASE]
    if not alpn:
        alpn_code = "00"
    elif alpn[0].isalnum() and alpn[-1].isalnum() and alpn.isascii():
        alpn_code = alpn[0] + alpn[-1]
    else:
        raw = alpn.encode()
        alpn_code = raw[:1].hex()[0] + raw[-1:].hex()[-1]
    a = (f"{transport}{version}{'d' if sni else 'i'}{min(len(ciphers), 99):02d}"
         f"{min(len(extensions), 99):02d}{alpn_code}")
    b = _hash12(",".join(["%04x" % c for c in sorted(ciphers)]))
    ext_text = ",".join(["%04x" % e for e in sorted(e for e in extensions if e not in (0x0000, 0x0010))])
    sigalgs_text = ",".join(["%04x" % s for s in sigalgs])
    c = _hash12(ext_text + ("_" + sigalgs_text if sigalgs_text else ""))
    return f"{a}_{b}_{c}"
