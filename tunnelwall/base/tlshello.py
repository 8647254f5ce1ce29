"""A real TLS ClientHello from Python's ssl module (OpenSSL), without a
connection: what the prober sends as its TLS probe and what tests feed the
classifiers, so both see the bytes a real client would send; and
ClientHellos built byte by byte (:func:`hello_message`) for published test
vectors, whose every field is chosen."""

from __future__ import annotations

import ssl
import struct
from functools import lru_cache


@lru_cache(maxsize=8)
def _context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    # One context per ALPN list: making one loads the system's CA store,
    # which costs far more than the handshake's first flight itself.
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = _context(tuple(alpn or ())).wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


# -- ClientHellos byte by byte: for test vectors whose every byte is chosen

EXT_SNI, EXT_ALPN, EXT_ECH = 0x0000, 0x0010, 0xFE0D


def hello_message(extensions: list[tuple[int, bytes]], ciphers: tuple[int, ...] = (0x1301,),
                  random: bytes = b"\x00" * 32) -> bytes:
    """A ClientHello handshake message (RFC 8446 section 4.1.2; 4-byte
    handshake header, no record layer: what a QUIC CRYPTO frame carries)
    with exactly *extensions* ((type, data) pairs), no session id and the
    null compression method."""
    exts = b"".join(struct.pack(">HH", kind, len(data)) + data for kind, data in extensions)
    body = (b"\x03\x03" + random + b"\x00" + struct.pack(">H", 2 * len(ciphers))
            + b"".join(struct.pack(">H", c) for c in ciphers) + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    return b"\x01" + len(body).to_bytes(3, "big") + body


def sni_extension(name: str) -> tuple[int, bytes]:
    """server_name (RFC 6066 section 3) with one host_name."""
    raw = name.encode("ascii")
    entry = b"\x00" + struct.pack(">H", len(raw)) + raw
    return EXT_SNI, struct.pack(">H", len(entry)) + entry


def alpn_extension(protocols: list[str]) -> tuple[int, bytes]:
    """application_layer_protocol_negotiation (RFC 7301 section 3.1)."""
    names = b"".join(bytes([len(p)]) + p.encode("ascii") for p in protocols)
    return EXT_ALPN, struct.pack(">H", len(names)) + names


def ech_outer_extension(payload: bytes, config_id: int = 0, enc: bytes = b"\x00" * 32) -> tuple[int, bytes]:
    """encrypted_client_hello of an outer ClientHello (draft-ietf-tls-esni-22
    section 5): type outer, HPKE suite X25519/SHA-256/AES-128-GCM, *enc*,
    and *payload* standing for the encrypted inner ClientHello."""
    data = (b"\x00" + struct.pack(">HH", 0x0001, 0x0001) + bytes([config_id]) + struct.pack(">H", len(enc)) + enc
            + struct.pack(">H", len(payload)) + payload)
    return EXT_ECH, data
