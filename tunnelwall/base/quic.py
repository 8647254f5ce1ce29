"""QUIC v1 Initial packets (RFC 9000 section 17.2.2, RFC 9001 section 5):
the client's Initial keys, which anyone can derive from the Destination
Connection ID (that is how a censor reads the SNI), and a protected Initial
packet carrying a ClientHello.

Used by the middlebox's QUIC classifier (to decrypt) and by the collateral
traffic mix (to send a real first flight). Uses python3-cryptography (AES,
AES-GCM; HKDF with the standard library's hmac).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

# Imported up front: a lazy import would stall the live middlebox on its
# first QUIC packet.
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
QUIC_V1 = 0x00000001
MIN_INITIAL = 1200        # a client pads its first datagram to at least this (RFC 9000 section 14.1)


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3's HKDF-Expand-Label (RFC 8446 section 7.1) with SHA-256.
    Every length used here fits in one HMAC block (RFC 5869: T(1) is the
    output), so it is one ``hmac.digest``: cryptography's HKDFExpand gives
    the same bytes at about ten times the cost per call, and the censor
    derives these keys for every QUIC flow it sees."""
    if length > 32:
        raise ValueError("hkdf_expand_label: at most one SHA-256 block")
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    return hmac.digest(secret, info + b"\x01", "sha256")[:length]


def client_initial_keys(dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, iv, header-protection key) of the client's Initial packets."""
    initial = hmac.new(INITIAL_SALT_V1, dcid, hashlib.sha256).digest()   # HKDF-Extract
    client = hkdf_expand_label(initial, b"client in", 32)
    return (hkdf_expand_label(client, b"quic key", 16), hkdf_expand_label(client, b"quic iv", 12),
            hkdf_expand_label(client, b"quic hp", 16))


def varint(n: int) -> bytes:
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack(">H", 0x4000 | n)
    return struct.pack(">I", 0x80000000 | n)


def initial_packet(handshake: bytes, dcid: bytes, scid: bytes = b"", pn: int = 2) -> bytes:
    """A client Initial with one CRYPTO frame carrying *handshake* (a TLS
    handshake message, no record layer), padded to MIN_INITIAL, encrypted
    and header-protected as RFC 9001 section 5 says."""
    pn_len = 4
    frames = b"\x06" + varint(0) + varint(len(handshake)) + handshake
    header_len = 1 + 4 + 1 + len(dcid) + 1 + len(scid) + 1 + 2 + pn_len
    frames += b"\x00" * max(0, MIN_INITIAL - header_len - len(frames) - 16)
    key, iv, hp = client_initial_keys(dcid)
    length = pn_len + len(frames) + 16
    header = (bytes([0xC0 | (pn_len - 1)]) + struct.pack(">I", QUIC_V1) + bytes([len(dcid)]) + dcid
              + bytes([len(scid)]) + scid + varint(0) + struct.pack(">H", 0x4000 | length)
              + pn.to_bytes(pn_len, "big"))
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    pn_offset = len(header) - pn_len
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[4 - pn_len:20 - pn_len])
    protected = bytearray(header)
    protected[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        protected[pn_offset + i] ^= mask[1 + i]
    return bytes(protected) + sealed
