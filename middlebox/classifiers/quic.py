"""QUIC v1 Initial: decrypt and read the SNI, as the GFW does since 2024.

Source: Zohaib et al., "Exposing and Circumventing SNI-based QUIC
Censorship of the Great Firewall of China", USENIX Security 2025 (artifact
gfw-report/usenixsecurity25-quic-sni). Measured behaviour: the GFW decrypts
the client's QUIC v1 Initial (keys derive from the public Destination
Connection ID, RFC 9001 section 5.2), checks the SNI against a blocklist,
looks only at the first packet of a flow and only when the source port is
greater than the destination port; QUIC v2 is not inspected. Blocking is
of (src IP, dst IP, dst port) for 180 s.

How the packet is read (the paper's Table 3; :mod:`middlebox.fidelity.quic_table3`
holds its ten cases as byte vectors):

* version 1 only; a version-2 number (or version 2 with version-1 keys)
  is not read;
* a connection ID longer than 20 bytes is not version 1 (RFC 9000 section
  17.2: such a packet is dropped); an empty Destination Connection ID is
  read (its keys derive from the empty string), and a 1-byte packet number
  is read: the GFW blocks both;
* the packet must authenticate (a packet with its last byte cut is not read);
* the CRYPTO data: by default every CRYPTO frame is reassembled in offset
  order with PADDING, PING and ACK frames skipped (RFC 9000), as a
  standard parser and Russia's TSPU read it. With parameter
  ``first_frame_only`` (gfw-2025) the ClientHello is read only from a
  CRYPTO frame that is the packet's *first* frame, and that frame's length
  field is not trusted: the handshake message's own header says how long
  it is. The GFW did not block a ClientHello in a CRYPTO frame among PING
  and PADDING frames, and did block one behind a CRYPTO frame whose length
  field said 0 (written as two zero bytes: a 0-length frame and one byte
  of PADDING to a standard parser). The paper gives the outcomes, not the
  GFW's code: this is the simplest reading that gives all ten.

Every loop here advances through the decrypted bytes (each says how) and
spends the packet's work budget (:mod:`middlebox.budget`).
"""

from __future__ import annotations

import struct

from tunnelwall.base.quic import MAX_CID, QUIC_V1, client_initial_keys

try:   # imported up front: a lazy import would stall the live middlebox on its first UDP packet
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:   # pragma: no cover - python3-cryptography is a dependency
    AESGCM = None

from ..budget import spend
from ..packet import UDP
from .base import C2S, DONE, Classifier, Detection
from .fingerprint import ja3, ja4
from .tls import EXT_ECH, parse_client_hello_body

PADDING, PING, ACK, ACK_ECN, CRYPTO = 0x00, 0x01, 0x02, 0x03, 0x06
MAX_CRYPTO_CHUNKS = 64       # CRYPTO frames kept per packet (a real client sends a handful)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    length = 1 << (first >> 6)
    if pos + length > len(buf):
        raise IndexError("truncated varint")
    value = first & 0x3F
    for b in buf[pos + 1:pos + length]:      # at most 7 bytes
        value = (value << 8) | b
    return value, pos + length


def open_initial(payload: bytes) -> bytes | None:
    """The decrypted frames of a client QUIC v1 Initial packet, or None if
    *payload* is not one (or does not authenticate)."""
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
        if dcid_len > MAX_CID:
            return None                              # not version 1 (RFC 9000 section 17.2)
        dcid = payload[pos + 1:pos + 1 + dcid_len]
        pos += 1 + dcid_len
        if payload[pos] > MAX_CID:
            return None
        pos += 1 + payload[pos]                      # source connection id
        token_len, pos = _varint(payload, pos)
        pos += token_len
        length, pos = _varint(payload, pos)
        pn_offset = pos
        if len(dcid) != dcid_len or pn_offset + 4 + 16 > len(payload) or length > len(payload) - pn_offset:
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
        return AESGCM(key).decrypt(nonce, payload[pn_offset + pn_len:pn_offset + length], header)
    except Exception:   # noqa: BLE001 - any malformed or undecryptable packet is simply "not QUIC"
        return None


def decrypt_initial(payload: bytes, first_frame_only: bool = False) -> bytes | None:
    """The CRYPTO stream bytes at offset 0.. of a client QUIC v1 Initial
    packet (None: not one), read the standard way or, with
    *first_frame_only*, as the GFW reads them (see the module's docstring)."""
    frames = open_initial(payload)
    if frames is None:
        return None
    return first_crypto_frame(frames) if first_frame_only else crypto_stream(frames)


def crypto_stream(frames: bytes) -> bytes:
    """The CRYPTO data at offsets 0.. of a packet's frames, reassembled
    (RFC 9000 section 19.6); PADDING, PING and ACK frames are skipped, and
    the first other frame ends the reading."""
    chunks: dict[int, bytes] = {}
    pos = 0
    try:
        # Each pass consumes at least the frame-type byte (pos strictly grows).
        while pos < len(frames):
            spend(1, "quic frames")
            ftype = frames[pos]
            if ftype in (PADDING, PING):       # one byte each; skip the whole run at once
                pos = len(frames) - len(frames[pos:].lstrip(b"\x00\x01"))
            elif ftype in (ACK, ACK_ECN):      # skip it
                pos += 1
                _largest, pos = _varint(frames, pos)
                _delay, pos = _varint(frames, pos)
                count, pos = _varint(frames, pos)
                _first, pos = _varint(frames, pos)
                # Each range is two varints of at least one byte each: a count
                # larger than the bytes left ends in IndexError, not a long loop.
                if count * 2 > len(frames) - pos:
                    break
                for _ in range(count * 2):
                    _x, pos = _varint(frames, pos)
                spend(count, "quic ACK ranges")
                if ftype == ACK_ECN:
                    for _ in range(3):
                        _x, pos = _varint(frames, pos)
            elif ftype == CRYPTO:
                offset, pos = _varint(frames, pos + 1)
                length, pos = _varint(frames, pos)
                # A 0-length frame adds nothing; kept, it would stall the
                # reassembly below (the issue-34 hang: offset += 0 forever).
                if length and len(chunks) < MAX_CRYPTO_CHUNKS:
                    chunks.setdefault(offset, frames[pos:pos + length])
                pos += length
            else:
                break
    except IndexError:
        pass
    parts, offset = [], 0
    # Every kept chunk is non-empty (a cut-short one too: frames[pos:pos + length]
    # with pos < len(frames)), so offset strictly grows; at most len(chunks) passes.
    while offset in chunks:
        spend(1, "quic CRYPTO reassembly")
        chunk = chunks.pop(offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def first_crypto_frame(frames: bytes) -> bytes:
    """The handshake data as the GFW reads it: only a CRYPTO frame at offset
    0 that is the packet's first frame, its length field not trusted (the
    data runs to the end of the frames; PADDING bytes right after the
    frame's header are skipped). Empty if there is none."""
    try:
        if not frames or frames[0] != CRYPTO:
            return b""
        offset, pos = _varint(frames, 1)
        _length, pos = _varint(frames, pos)
    except IndexError:
        return b""
    if offset != 0:
        return b""
    data = frames[pos:].lstrip(b"\x00")
    if len(data) < 4:
        return b""
    return data[:4 + int.from_bytes(data[1:4], "big")]     # the handshake message's own length


class QUIC(Classifier):
    name = "quic"
    transports = frozenset({UDP})
    # The GFW's port-order condition belongs to its rule (match: sport_gt_dport);
    # this switch makes the classifier itself blind to the other order.
    # first_frame_only: read the ClientHello as the GFW does (see above).
    DEFAULTS = {"require_sport_gt_dport": False, "first_frame_only": False}

    def update(self, state, flow, pkt, direction):
        if direction != C2S or not pkt.payload:
            return DONE
        if self.params["require_sport_gt_dport"] and not pkt.sport > pkt.dport:
            return DONE
        stream = decrypt_initial(pkt.payload, self.params["first_frame_only"])
        if not stream or stream[0] != 0x01:          # handshake type ClientHello
            return DONE
        hello = parse_client_hello_body(stream[4:])
        if hello is None:
            return DONE
        detail = {"sni": hello["sni"], "alpn": hello["alpn"], "ja3": ja3(hello), "ja4": ja4(hello, "q")}
        return Detection("quic", "ech" if EXT_ECH in hello["extensions"] else "initial", 1.0, detail)
