"""The ten QUIC Initials of Zohaib et al., "Exposing and Circumventing
SNI-based QUIC Censorship of the Great Firewall of China", USENIX Security
2025, Table 3, and what the GFW did with each (measured: 20 packets per
vector and direction across vantage points in and outside China; artifact
gfw-report/usenixsecurity25-quic-sni, experiments/what-triggers-blocking).

Built here with the project's own QUIC builder
(:func:`tunnelwall.base.quic.protect_initial`), the way the artifact's
``payload-gen-reference.md`` describes each payload: a small ClientHello
(TLS 1.3 cipher, an all-zero random) naming *name*, no padding to 1200
bytes, a 1-byte packet number and 8-byte connection IDs unless the case
changes them. Blocked: 1, 4, 6. Not blocked: the rest.

Besides these, the paper measured that the GFW reads only the first packet
of a 4-tuple (a datagram of anything else first, and the Initial after it
passes) and keeps a 4-tuple for 60 s after its last packet
(experiments/flow-tracking-time): see ``FIRST_PACKET_ONLY`` and
``FLOW_MEMORY_S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tunnelwall.base.quic import QUIC_V2, crypto_frame, protect_initial, varint
from tunnelwall.base.tlshello import alpn_extension, ech_outer_extension, hello_message, sni_extension

SOURCE = ("Zohaib et al., Exposing and Circumventing SNI-based QUIC Censorship of the Great Firewall of China, "
          "USENIX Security 2025, Table 3")
DEFAULT_NAME = "google.com"          # the paper's name; on gfw-2025's blocklist
DCID, SCID = bytes.fromhex("ef751b897969b518"), bytes.fromhex("85fc1d15e30a71d7")
FIRST_PACKET_ONLY = True             # only a 4-tuple's first packet is read
FLOW_MEMORY_S = 60                   # a 4-tuple is remembered for 60 s after its last packet


@dataclass(frozen=True)
class Vector:
    case: int                        # the row of Table 3
    name: str                        # a short identifier
    what: str                        # the construction, in words
    build: Callable[[str], bytes]    # the UDP payload, naming the given server name
    blocked: bool                    # the GFW's published outcome
    source: str = SOURCE


def _hello(name: str) -> bytes:
    return hello_message([sni_extension(name)])


def _initial(frames: bytes, dcid: bytes = DCID, scid: bytes = SCID, pn_len: int = 1, **kw) -> bytes:
    return protect_initial(frames, dcid, scid, pn=0, pn_len=pn_len, pad_to=0, **kw)


def pn_1_byte(name: str) -> bytes:
    return _initial(crypto_frame(_hello(name)))


def last_byte_removed(name: str) -> bytes:
    return pn_1_byte(name)[:-1]


def version_2_v1_keys(name: str) -> bytes:
    packet = bytearray(pn_1_byte(name))
    packet[1:5] = (2).to_bytes(4, "big")      # the version field, after protection (it is in the AAD)
    return bytes(packet)


def cids_empty(name: str) -> bytes:
    return _initial(crypto_frame(_hello(name)), dcid=b"", scid=b"")


def cid_length_255(name: str) -> bytes:
    dcid = bytes((i * 37 + 11) % 256 for i in range(255))
    return _initial(crypto_frame(_hello(name)), dcid=dcid, scid=b"")


def crypto_length_0(name: str) -> bytes:
    # The length field written as two zero bytes, as in the paper's payload
    # (06 00 0000 01...): to a standard parser a 0-length CRYPTO frame, one
    # PADDING byte, then the ClientHello's bytes read as frames.
    return _initial(b"\x06" + varint(0) + b"\x00\x00" + _hello(name))


def name_in_alpn(name: str) -> bytes:
    return _initial(crypto_frame(hello_message([alpn_extension([name])])))


def crypto_among_ping_padding(name: str) -> bytes:
    # PING, 165 PADDING, the CRYPTO frame (www.<name>, as the paper's), PADDING,
    # three PINGs: 1215 bytes of frames, a 1250-byte packet as the paper's.
    frames = b"\x01" + b"\x00" * 165 + crypto_frame(_hello("www." + name))
    frames += b"\x00" * (1215 - 3 - len(frames)) + b"\x01\x01\x01"
    return _initial(frames, scid=b"")


def ech_outer_cloudflare(name: str) -> bytes:
    # The inner ClientHello (which would name *name*) is encrypted: only the
    # outer SNI, cloudflare-ech.com, is in the clear. Connection IDs empty,
    # as in the paper's payload.
    inner_stand_in = bytes((i * 53 + 7) % 256 for i in range(256))
    hello = hello_message([ech_outer_extension(inner_stand_in), sni_extension("cloudflare-ech.com"),
                           alpn_extension(["h3"])])
    return _initial(crypto_frame(hello), dcid=b"", scid=b"")


def quic_v2(name: str) -> bytes:
    return protect_initial(crypto_frame(_hello(name)), DCID, SCID, pn=0, pn_len=2, version=QUIC_V2, pad_to=1200)


VECTORS: tuple[Vector, ...] = (
    Vector(1, "pn-1-byte", "a v1 Initial with a 1-byte packet number, 8-byte connection IDs, no padding",
           pn_1_byte, True),
    Vector(2, "last-byte-removed", "case 1 with its last byte cut (it no longer authenticates)",
           last_byte_removed, False),
    Vector(3, "version-2-v1-keys", "case 1 with version 0x00000002 written over version 1",
           version_2_v1_keys, False),
    Vector(4, "cids-empty", "both connection IDs empty (keys from the empty DCID)", cids_empty, True),
    Vector(5, "cid-length-255", "a 255-byte Destination Connection ID, Source empty", cid_length_255, False),
    Vector(6, "crypto-length-0", "a CRYPTO frame whose length field is 0, the ClientHello right after it",
           crypto_length_0, True),
    Vector(7, "name-in-alpn", "no SNI; the name only in the ALPN extension", name_in_alpn, False),
    Vector(8, "crypto-among-ping-padding", "a PING and PADDING before the CRYPTO frame, PINGs after",
           crypto_among_ping_padding, False),
    Vector(9, "ech-outer-cloudflare", "ECH; the outer SNI cloudflare-ech.com decides", ech_outer_cloudflare, False),
    Vector(10, "quic-v2", "a QUIC version 2 Initial (RFC 9369 keys and header)", quic_v2, False),
)


@dataclass(frozen=True)
class Outcome:
    vector: Vector
    blocked: bool                    # what the emulated censor did
    rule: str | None                 # the rule that decided, if any
    protocol: str | None             # what the classifiers made of the packet

    @property
    def agrees(self) -> bool:
        return self.blocked == self.vector.blocked


def emulate(profile, name: str = DEFAULT_NAME, client: str = "10.0.0.11", server: str = "198.18.0.10",
            client_port: int = 50000, server_port: int = 443, vectors: tuple[Vector, ...] = VECTORS) -> list[Outcome]:
    """Each vector as the first datagram of its own flow through a fresh
    engine for *profile* (client inside, source port above destination
    port, as the paper sent them)."""
    from ..engine import Engine
    from ..packet import UDP, Packet, ip_bytes
    out = []
    for vector in vectors:
        engine = Engine(profile)
        flow = engine.feed_packet(Packet(ip_bytes(client), ip_bytes(server), UDP, client_port, server_port,
                                         vector.build(name)), 0.0)
        v = flow.verdict
        out.append(Outcome(vector, bool(v and v.blocks), v.rule if v else None, flow.protocol))
    return out
