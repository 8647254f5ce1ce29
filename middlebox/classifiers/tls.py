"""TLS ClientHello: SNI, ALPN, ESNI/ECH; and Tor's TLS fingerprint.

Sources: RFC 8446 section 4.1.2 (ClientHello layout), RFC 6066 section 3
(server_name). Censors' use: the GFW blocks by SNI and blocked ESNI
(extension 0xffce) outright since 2020-07 for 120-180 s on the 3-tuple
(Bock et al., GFW Report, "Exposing and Circumventing China's Censorship of
ESNI", 2020); keyword/SNI hits put the 3-tuple in a 90 s penalty box.

The classifier reads the client's reassembled byte stream (see
:mod:`middlebox.stream`), so a ClientHello split over TCP segments, in or
out of order, is read whole, as the GFW has done since at least 2024
(GFWeb, Hoang et al., USENIX Security 2024). A ClientHello split over
several TLS *records* is a separate matter: parameter ``records`` (default
false) reassembles the handshake message across records; off, the censor
reads only the first record, as the GFW still did in 2024, while some
Chinese ISPs reset such ClientHellos by December 2025 (net4people issue
550). A name cut short by the end of the bytes is never reported as a
shorter name.

Tor (``Tor`` classifier): the *passive* half of the GFW's Tor detection,
which an active probe confirms (Ensafi et al., IMC 2015); pluggable
transports (obfs4) are caught by the FET rule or probing instead. Little-t
tor's ClientHello names a made-up ``www.<base32>.com`` server and offers no
ALPN; that shape alone also fits ``www.example.com``, so it is only the
precondition. Then either of two published kinds of evidence decides:

* the ClientHello itself: the GFW told Tor apart by its cipher list (Winter
  and Lindskog, "How the Great Firewall of China is Blocking Tor", FOCI
  2012). Tor sets its cipher suites and its groups (P-256, X25519, P-224)
  itself; ``TOR_HELLOS`` holds those of the tor builds measured here
  (signal ``tls-fingerprint``);
* the name's label looks random (:mod:`.labelrandom`, a likelihood-ratio
  test against English spelling, as nDPI also asks the name to look random):
  signal ``random-sni``, for tor builds whose ClientHello is not listed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ..budget import spend
from ..packet import TCP
from .base import C2S, DONE, Classifier, Detection
from .fingerprint import ja3, ja4
from .labelrandom import looks_random, randomness_score

EXT_SNI, EXT_ALPN, EXT_SUPPORTED_VERSIONS, EXT_ESNI, EXT_ECH = 0, 16, 43, 0xFFCE, 0xFE0D
EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIGALGS = 10, 11, 13


def _u16s(buf: bytes, pos: int, nbytes: int) -> list[int]:
    """The big-endian 16-bit values in ``buf[pos:pos + nbytes]`` (an odd
    last byte left out), in one unpack: this runs for every ClientHello."""
    count = nbytes // 2
    if count <= 0:
        return []
    return list(struct.unpack_from(f">{count}H", buf, pos))


def parse_client_hello_body(body: bytes, dtls: bool = False) -> dict | None:
    """Parse a ClientHello handshake body (after the handshake header; for
    DTLS, RFC 6347 section 4.2.1, a cookie follows the session id). A body
    cut short yields what it holds; ``truncated`` says so. Also collects what
    JA3/JA4 fingerprints need: groups, point formats, signature algorithms,
    supported versions."""
    try:
        pos = 2 + 32                                   # legacy_version, random
        sid_len = body[pos]
        pos += 1 + sid_len
        if dtls:
            pos += 1 + body[pos]                       # cookie
        cs_len = struct.unpack_from(">H", body, pos)[0]
        ciphers = _u16s(body, pos + 2, cs_len)
        pos += 2 + cs_len
        comp_len = body[pos]
        pos += 1 + comp_len
        info = {"version": struct.unpack_from(">H", body, 0)[0], "ciphers": ciphers, "extensions": [],
                "sni": None, "alpn": [], "truncated": False, "groups": [], "point_formats": [], "sigalgs": [],
                "versions": []}
        if pos + 2 > len(body):
            info["truncated"] = pos < len(body) or len(body) < 4 + 32
            return info
        declared_end = pos + 2 + struct.unpack_from(">H", body, pos)[0]
        ext_end = min(len(body), declared_end)
        info["truncated"] = declared_end > len(body)
        pos += 2
        # Each extension moves pos on by its 4-byte header and its length.
        while pos + 4 <= ext_end:
            spend(1, "tls extensions")
            etype, elen = struct.unpack_from(">HH", body, pos)
            data = body[pos + 4:pos + 4 + elen]
            info["extensions"].append(etype)
            if etype == EXT_SNI and len(data) >= 5 and data[2] == 0:
                name_len = struct.unpack_from(">H", data, 3)[0]
                if 5 + name_len <= len(data):             # never a name cut short
                    info["sni"] = data[5:5 + name_len].decode("ascii", "replace").lower()
            elif etype == EXT_ALPN and len(data) >= 2:
                p = 2
                while p < len(data):                      # each name moves p on by 1 + its length
                    spend(1, "tls alpn")
                    n = data[p]
                    info["alpn"].append(data[p + 1:p + 1 + n].decode("ascii", "replace"))
                    p += 1 + n
            elif etype in (EXT_GROUPS, EXT_SIGALGS) and len(data) >= 2:
                n = min(struct.unpack_from(">H", data, 0)[0], len(data) - 2)
                info["groups" if etype == EXT_GROUPS else "sigalgs"] = _u16s(data, 2, n)
            elif etype == EXT_POINT_FORMATS and data:
                info["point_formats"] = list(data[1:1 + data[0]])
            elif etype == EXT_SUPPORTED_VERSIONS and data:
                info["versions"] = _u16s(data, 1, min(data[0], len(data) - 1))
            pos += 4 + elen
        return info
    except (IndexError, struct.error):
        return None


def client_hello_message(data: bytes, records: bool = True) -> tuple[bytes | None, bool]:
    """The ClientHello handshake message (4-byte header and body) at the
    start of a client's TLS byte stream, and whether it is complete.

    (None, _): the bytes are not a TLS handshake starting with a ClientHello.
    (msg, False): more bytes are needed. With *records* false only the first
    record is read, and the message ends with it."""
    msg, pos = b"", 0
    # Each pass consumes a 5-byte record header and its fragment, or returns.
    while pos + 5 <= len(data):
        spend(1, "tls records")
        if data[pos] != 0x16 or data[pos + 1] != 0x03:
            return (None, True) if pos == 0 else (msg, True)
        length = struct.unpack_from(">H", data, pos + 3)[0]
        fragment = data[pos + 5:pos + 5 + length]
        msg += fragment
        if len(msg) >= 1 and msg[0] != 0x01:
            return None, True
        if len(msg) >= 4:
            need = 4 + struct.unpack_from(">I", b"\0" + msg[1:4])[0]
            if len(msg) >= need:
                return msg[:need], True
        if len(fragment) < length:
            return msg, False                  # the record itself is not all here yet
        if not records:
            return msg, True                   # the censor reads one record only
        pos += 5 + length
    if pos == 0 and data and (data[0] != 0x16 or (len(data) > 1 and data[1] != 0x03)):
        return None, True
    return msg, False


def parse_client_hello(payload: bytes, records: bool = True) -> dict | None:
    """ClientHello fields from the start of a TLS stream, or None if it is not one."""
    msg, _complete = client_hello_message(payload, records)
    if not msg or len(msg) < 4:
        return None
    return parse_client_hello_body(msg[4:])


def read_client_hello(pkt, records: bool):
    """For classifiers: the parsed ClientHello in *pkt*'s bytes, None to
    wait for more, or DONE when it is not (or can no longer be) one."""
    if not pkt.payload:
        return None
    final = getattr(pkt, "full", True)       # a single packet (no reassembly) is all there is
    msg, complete = client_hello_message(pkt.payload, records)
    if msg is None:
        return DONE
    if not complete and not final:
        return None
    hello = _parse_message(msg)
    return DONE if hello is None else hello


_last: tuple[bytes, dict | None] = (b"", None)


def _parse_message(msg: bytes) -> dict | None:
    """The TLS and Tor classifiers read the same ClientHello of a flow one
    after the other: the second gets the first's parse (the dict is shared,
    so classifiers only read it)."""
    global _last
    if msg == _last[0]:
        return _last[1]
    hello = parse_client_hello_body(msg[4:]) if len(msg) >= 4 else None
    _last = (msg, hello)
    return hello


class TLS(Classifier):
    name = "tls"
    transports = frozenset({TCP})
    reads_stream = True
    DEFAULTS = {"records": False}

    def update(self, state, flow, pkt, direction):
        if direction != C2S:
            return None
        hello = read_client_hello(pkt, self.params["records"])
        if hello is None or hello is DONE:
            return hello
        detail = {"sni": hello["sni"], "alpn": hello["alpn"], "ja3": ja3(hello), "ja4": ja4(hello, "t")}
        if EXT_ESNI in hello["extensions"]:
            return Detection("tls", "esni", 1.0, detail)
        if EXT_ECH in hello["extensions"]:
            return Detection("tls", "ech", 1.0, detail)
        return Detection("tls", "client-hello", 1.0, detail)


TOR_SNI = re.compile(r"^www\.([a-z2-7]{4,25})\.(com|net)$")


@dataclass(frozen=True)
class TorHello:
    """What a tor build's ClientHello offers that tor, not OpenSSL, chose."""
    build: str
    ciphers: tuple[int, ...]
    groups: tuple[int, ...]


# Measured: tor 0.4.9.11 (Debian 12) with OpenSSL 3.0.19, its client's
# ClientHellos to a bridge on loopback (tests/fixtures/tor/). The TLS 1.3
# suites in the order 1301, 1303, 1302 and the group secp224r1 (21) are
# tor's own settings; OpenSSL's defaults differ in both.
TOR_HELLOS = (
    TorHello("tor 0.4.9.11 / OpenSSL 3.0.19",
             ciphers=(0x1301, 0x1303, 0x1302, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC02C, 0xC030, 0xC00A, 0xC009,
                      0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035, 0x00FF),
             groups=(23, 29, 21)),
)


def tor_build(hello: dict) -> str | None:
    """The listed tor build whose cipher suites and groups *hello* offers, if any."""
    ciphers, groups = tuple(hello["ciphers"]), tuple(hello["groups"])
    return next((t.build for t in TOR_HELLOS if t.ciphers == ciphers and t.groups == groups), None)


def tor_signal(hello: dict) -> Detection | None:
    """The Tor detection for a parsed ClientHello, or None: a pure function
    of the hello (tests and ``tunnelwall fidelity`` call it directly)."""
    name = hello["sni"]
    shape = TOR_SNI.match(name) if name else None
    if shape is None or hello["alpn"]:
        return None
    label = shape.group(1)
    build, random_label = tor_build(hello), looks_random(label)
    detail = {"sni": name, "label_score": round(randomness_score(label), 1)}
    if build:
        return Detection("tor", "tls-fingerprint", 0.95 if random_label else 0.9, {**detail, "build": build})
    if random_label:
        return Detection("tor", "random-sni", 0.6, detail)
    return None


class Tor(Classifier):
    name = "tor"
    transports = frozenset({TCP})
    reads_stream = True
    sees_inside_tunnels = True          # a Tor link is TLS: it goes on after TLS is identified

    def update(self, state, flow, pkt, direction):
        if direction != C2S:
            return None
        hello = read_client_hello(pkt, True)
        if hello is None or hello is DONE:
            return hello
        return tor_signal(hello) or DONE
