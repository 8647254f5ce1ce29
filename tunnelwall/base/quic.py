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
INITIAL_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")   # RFC 9369 section 3.3.1
QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF                                                            # RFC 9369 section 3.1
MAX_CID = 20              # a version 1 or 2 connection ID is at most 20 bytes (RFC 9000 section 17.2)
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


def client_initial_keys(dcid: bytes, version: int = QUIC_V1) -> tuple[bytes, bytes, bytes]:
    """(key, iv, header-protection key) of the client's Initial packets of
    QUIC version 1 (RFC 9001 section 5.2) or 2 (RFC 9369 section 3.3: its
    own salt and labels)."""
    v2 = version == QUIC_V2
    initial = hmac.new(INITIAL_SALT_V2 if v2 else INITIAL_SALT_V1, dcid, hashlib.sha256).digest()   # HKDF-Extract
    client = hkdf_expand_label(initial, b"client in", 32)
    prefix = b"quicv2 " if v2 else b"quic "
    return (hkdf_expand_label(client, prefix + b"key", 16), hkdf_expand_label(client, prefix + b"iv", 12),
            hkdf_expand_label(client, prefix + b"hp", 16))


def varint(n: int) -> bytes:
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack(">H", 0x4000 | n)
    return struct.pack(">I", 0x80000000 | n)


def crypto_frame(data: bytes, offset: int = 0, length: int | None = None) -> bytes:
    """A CRYPTO frame (RFC 9000 section 19.6) carrying *data*; *length*
    writes another value in its length field than ``len(data)`` (the
    malformed frames censors are tested with)."""
    return b"\x06" + varint(offset) + varint(len(data) if length is None else length) + data


def initial_packet(handshake: bytes, dcid: bytes, scid: bytes = b"", pn: int = 2) -> bytes:
    """A client Initial with one CRYPTO frame carrying *handshake* (a TLS
    handshake message, no record layer), padded to MIN_INITIAL, encrypted
    and header-protected as RFC 9001 section 5 says."""
    return protect_initial(crypto_frame(handshake), dcid, scid, pn=pn)


def protect_initial(frames: bytes, dcid: bytes, scid: bytes = b"", pn: int = 2, pn_len: int = 4,
                    version: int = QUIC_V1, pad_to: int = MIN_INITIAL, token: bytes = b"") -> bytes:
    """A client Initial packet whose plaintext is *frames* (PADDING added
    until the packet is *pad_to* bytes long; 0: none), encrypted with the
    Initial keys of *version* (1, or 2 with its own keys and long-header
    type bits, RFC 9369 section 3.2) and header-protected (RFC 9001
    section 5.4). *pn_len* is the packet number's length on the wire, 1 to
    4; the header-protection sample starts 4 bytes after the packet
    number's start whatever its length, so short frames are padded to make
    a sample (RFC 9001 section 5.4.2)."""
    if not 1 <= pn_len <= 4:
        raise ValueError("protect_initial: pn_len is 1 to 4")
    type_bits = 0x10 if version == QUIC_V2 else 0x00          # Initial: 0b01 in v2, 0b00 in v1
    def header(length: int) -> bytes:
        return (bytes([0xC0 | type_bits | (pn_len - 1)]) + struct.pack(">I", version) + bytes([len(dcid)]) + dcid
                + bytes([len(scid)]) + scid + varint(len(token)) + token + struct.pack(">H", 0x4000 | length)
                + (pn % (1 << (8 * pn_len))).to_bytes(pn_len, "big"))
    overhead = len(header(0)) + 16
    frames += b"\x00" * max(0, pad_to - overhead - len(frames), 4 - pn_len - len(frames))
    head = header(pn_len + len(frames) + 16)
    key, iv, hp = client_initial_keys(dcid, version)
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, frames, head)
    pn_offset = len(head) - pn_len
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[4 - pn_len:20 - pn_len])
    protected = bytearray(head)
    protected[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        protected[pn_offset + i] ^= mask[1 + i]
    return bytes(protected) + sealed
