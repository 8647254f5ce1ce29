"""QUIC v1 Initial: decrypt and read the SNI, as the GFW does since 2024.

Source: Zohaib et al., "Exposing and Circumventing SNI-based QUIC
Censorship of the Great Firewall of China", USENIX Security 2025 (artifact
gfw-report/usenixsecurity25-quic-sni). Measured behaviour: the GFW decrypts
the client's QUIC v1 Initial (keys derive from the public Destination
Connection ID, RFC 9001 section 5.2), checks the SNI against a blocklist,
looks only at the first packet of a flow and only when the source port is
greater than the destination port; QUIC v2 is not inspected. Blocking is
of (src IP, dst IP, dst port) for 180 s.
"""

from __future__ import annotations

import struct

from tunnelwall.base.quic import QUIC_V1, client_initial_keys

try:   # imported up front: a lazy import would stall the live middlebox on its first UDP packet
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:   # pragma: no cover - python3-cryptography is a dependency
    AESGCM = None

from ..packet import UDP
from .base import C2S, DONE, Classifier, Detection
from .fingerprint import ja3, ja4
from .tls import EXT_ECH, parse_client_hello_body


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    length = 1 << (first >> 6)
    value = first & 0x3F
    for b in buf[pos + 1:pos + length]:
        value = (value << 8) | b
    if pos + length > len(buf):
        raise IndexError("truncated varint")
    return value, pos + length


def decrypt_initial(payload: bytes) -> bytes | None:
    """The CRYPTO stream bytes at offset 0.. of a client QUIC v1 Initial packet."""
    if AESGCM is None:
        return None
    try:
        first = payload[0]
        if first & 0xC0 != 0xC0 or (first >> 4) & 0x03 != 0:
            return None
        if struct.unpack_from(">I", payload, 1)[0] != QUIC_V1:
            return None
        pos = 5
        dcid_len = payload[pos]
        dcid = payload[pos + 1:pos + 1 + dcid_len]
        pos += 1 + dcid_len
        pos += 1 + payload[pos]                      # source connection id
        token_len, pos = _varint(payload, pos)
        pos += token_len
        length, pos = _varint(payload, pos)
        pn_offset = pos
        if dcid_len == 0 or pn_offset + 4 + 16 > len(payload) or length > len(payload) - pn_offset:
            return None
        key, iv, hp = client_initial_keys(dcid)
        sample = payload[pn_offset + 4:pn_offset + 20]
        mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)
        first ^= mask[0] & 0x0F
        pn_len = (first & 0x03) + 1
        pn_bytes = bytes(b ^ m for b, m in zip(payload[pn_offset:pn_offset + pn_len], mask[1:1 + pn_len]))
        header = bytes([first]) + payload[1:pn_offset] + pn_bytes
        pn = int.from_bytes(pn_bytes, "big")
        nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
        plain = AESGCM(key).decrypt(nonce, payload[pn_offset + pn_len:pn_offset + length], header)
    except Exception:   # noqa: BLE001 - any malformed or undecryptable packet is simply "not QUIC"
        return None
    return _crypto_stream(plain)


def _crypto_stream(frames: bytes) -> bytes:
    chunks: dict[int, bytes] = {}
    pos = 0
    try:
        while pos < len(frames):
            ftype = frames[pos]
            if ftype in (0x00, 0x01):          # PADDING, PING: one byte each; skip the whole run at once
                pos = len(frames) - len(frames[pos:].lstrip(b"\x00\x01"))
            elif ftype in (0x02, 0x03):        # ACK: skip it
                pos += 1
                _largest, pos = _varint(frames, pos)
                _delay, pos = _varint(frames, pos)
                count, pos = _varint(frames, pos)
                _first, pos = _varint(frames, pos)
                for _ in range(count * 2):
                    _x, pos = _varint(frames, pos)
                if ftype == 0x03:
                    for _ in range(3):
                        _x, pos = _varint(frames, pos)
            elif ftype == 0x06:                # CRYPTO
                offset, pos = _varint(frames, pos + 1)
                length, pos = _varint(frames, pos)
                chunks[offset] = frames[pos:pos + length]
                pos += length
            else:
                break
    except IndexError:
        pass
    stream, offset = b"", 0
    while offset in chunks:
        stream += chunks[offset]
        offset += len(chunks[offset])
    return stream


class QUIC(Classifier):
    name = "quic"
    transports = frozenset({UDP})
    # The GFW's port-order condition belongs to its rule (match: sport_gt_dport);
    # this switch makes the classifier itself blind to the other order.
    DEFAULTS = {"require_sport_gt_dport": False}

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return DONE
        if self.params["require_sport_gt_dport"] and not pkt.sport > pkt.dport:
            return DONE
        stream = decrypt_initial(pkt.payload)
        if not stream or stream[0] != 0x01:          # handshake type ClientHello
            return DONE
        hello = parse_client_hello_body(stream[4:])
        if hello is None:
            return DONE
        detail = {"sni": hello["sni"], "alpn": hello["alpn"], "ja3": ja3(hello), "ja4": ja4(hello, "q")}
        return Detection("quic", "ech" if EXT_ECH in hello["extensions"] else "initial", 1.0, detail)
