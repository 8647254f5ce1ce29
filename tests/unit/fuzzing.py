"""Structured fuzzing of every classifier and parser on the packet path
(issue 34): inputs that are valid QUIC Initials (encrypted with the real
Initial keys), TLS and DTLS ClientHellos, WireGuard and OpenVPN messages,
DNS, HTTP, SSH, IKE, whose *plaintext* is mutated and then re-encrypted or
re-framed, so the code behind the AEAD and the framing is reached (random
bytes almost never authenticate as a QUIC Initial).

One generator, :func:`structured_input`, driven by a ``random.Random``: the
unit test draws it through hypothesis (``st.randoms``), the long run in
``benchmarks/fuzz.py`` with a seeded generator. :func:`check` runs one
input through every classifier directly (exceptions reach the fuzzer, not
the engine's "unparsed" guard) and through the engine, each packet with a
metered work budget, and returns what went wrong, if anything. Failing
inputs are kept as JSON files in ``tests/fuzz_corpus/``, replayed by
``test_fuzz_structured.py``.
"""

from __future__ import annotations

import json
import random
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunnelwall.base.dnsmsg import parse_dns_query
from tunnelwall.base.quic import QUIC_V1, QUIC_V2, crypto_frame, protect_initial, varint
from tunnelwall.base.tlshello import alpn_extension, ech_outer_extension, hello_message, sni_extension
from tunnelwall.middlebox import budget, profiles
from tunnelwall.middlebox.classifiers import CLASSIFIERS
from tunnelwall.middlebox.classifiers.base import C2S, S2C, StreamView
from tunnelwall.middlebox.classifiers.tls import parse_client_hello
from tunnelwall.middlebox.engine import Engine
from tunnelwall.middlebox.flow import Flow
from tunnelwall.middlebox.inject import Endpoints, tcp_segment
from tunnelwall.middlebox.packet import TCP, UDP, Packet, ip_bytes, parse_ethernet

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
CLIENT, SERVER = ip_bytes("10.0.0.11"), ip_bytes("198.18.0.20")
MAC = b"\x02" * 6
# CPU seconds one input may take (every classifier, twice the engine): two
# orders of magnitude above the slowest input seen, so a loaded machine does
# not flake; a loop is caught sooner by the work budget, which counts
# iterations, not time.
CPU_LIMIT_S = 0.2
NAMES = ["google.com", "www.youtube.com", "cloudflare-ech.com", "a", "", "x" * 70, "www.q3fpkrg5shdq.com",
         "twitter.com.", "WWW.EXAMPLE.ORG"]


@dataclass
class FuzzInput:
    kind: str                                  # what it was built as: "quic", "tls", "dtls", ...
    proto: int                                 # 6 or 17
    sport: int
    dport: int
    packets: list[tuple[int, bytes]] = field(default_factory=list)     # (direction, transport payload)
    # How the packets go on the wire (frames_of): None, plain IPv4 frames in
    # order; else the seed of the wire-level choices (IPv6, VLAN tags, IP
    # fragments, TCP segments reordered or repeated, header bytes mutated).
    wire_seed: int | None = None

    def to_json(self) -> str:
        d = asdict(self)
        d["packets"] = [[direction, payload.hex()] for direction, payload in self.packets]
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> "FuzzInput":
        d = json.loads(text)
        return cls(d["kind"], d["proto"], d["sport"], d["dport"],
                   [(int(direction), bytes.fromhex(h)) for direction, h in d["packets"]], d.get("wire_seed"))


# -- mutations of plaintext ----------------------------------------------------

INTERESTING_16 = (0, 1, 2, 0x3F, 0x40, 0x7F, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0xFFFF)


def mutate(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """A few edits of *data*: bytes set, a 16-bit field set to a boundary
    value (lengths), a cut, garbage spliced in, a stretch duplicated."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3) if rounds is None else rounds):
        op = rng.randrange(6)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 1 and len(out) >= 2:
            pos = rng.randrange(len(out) - 1)
            out[pos:pos + 2] = struct.pack(">H", rng.choice(INTERESTING_16))
        elif op == 2:
            del out[rng.randrange(len(out) + 1):]
        elif op == 3:
            pos = rng.randrange(len(out) + 1)
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and out:
            a = rng.randrange(len(out))
            b = min(len(out), a + rng.randint(1, 32))
            out[a:a] = out[a:b]
        elif out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def maybe(rng: random.Random, p: float, data: bytes) -> bytes:
    return mutate(rng, data) if rng.random() < p else data


def client_hello(rng: random.Random) -> bytes:
    """A ClientHello handshake message with a random choice of extensions."""
    exts = []
    if rng.random() < 0.8:
        exts.append(sni_extension(rng.choice(NAMES)))
    if rng.random() < 0.5:
        exts.append(alpn_extension(rng.sample(["h3", "h2", "http/1.1", "google.com", ""], rng.randint(1, 3))))
    if rng.random() < 0.2:
        exts.append(ech_outer_extension(rng.randbytes(rng.randint(0, 300))))
    if rng.random() < 0.4:
        exts.append((43, b"\x04\x03\x04\x03\x03"))                              # supported_versions
    if rng.random() < 0.4:
        exts.append((10, b"\x00\x06\x00\x1d\x00\x17\x00\x18"))                  # groups
    if rng.random() < 0.3:
        exts.append((13, b"\x00\x04\x04\x03\x08\x04"))                          # signature algorithms
    if rng.random() < 0.2:
        exts.append((11, b"\x01\x00"))                                          # point formats
    if rng.random() < 0.2:
        exts.append((rng.randrange(65536), rng.randbytes(rng.randint(0, 40))))
    rng.shuffle(exts)
    ciphers = tuple(rng.choice([0x1301, 0x1302, 0x1303, 0xC02B, 0x0A0A]) for _ in range(rng.randint(1, 8)))
    return maybe(rng, 0.5, hello_message(exts, ciphers, rng.randbytes(32)))


# -- protocols -------------------------------------------------------------------

def quic(rng: random.Random) -> FuzzInput:
    hello = client_hello(rng)
    frames = []
    pieces = rng.choice([1, 1, 1, 2, 3])                         # the ClientHello in 1..3 CRYPTO frames
    cuts = sorted(rng.sample(range(1, max(2, len(hello))), min(pieces - 1, max(0, len(hello) - 1))))
    at = 0
    for end in cuts + [len(hello)]:
        length = None if rng.random() < 0.85 else rng.choice([0, 1, end - at + 1, rng.randrange(1 << 14)])
        frames.append(crypto_frame(hello[at:end], at if rng.random() < 0.9 else rng.randrange(1 << 14), length))
        at = end
    extra = rng.randint(0, 3)
    for _ in range(extra):
        frames.append(rng.choice([b"\x01", b"\x00" * rng.randint(1, 40), crypto_frame(b"", rng.randrange(64)),
                                  b"\x02" + varint(rng.randrange(64)) + varint(0) + varint(rng.randrange(4)) + varint(0)
                                  + b"".join(varint(rng.randrange(64)) for _ in range(rng.randint(0, 8))),
                                  bytes([rng.randrange(256)]) + rng.randbytes(rng.randint(0, 12))]))
    rng.shuffle(frames) if rng.random() < 0.3 else None
    plain = b"".join(frames)
    if rng.random() < 0.3:
        plain = mutate(rng, plain)
    dcid_len = rng.choice([8, 8, 8, 0, 1, 20, 21, rng.randrange(256)])
    version = rng.choices([QUIC_V1, QUIC_V2, rng.randrange(1 << 32)], [0.85, 0.1, 0.05])[0]
    packet = protect_initial(plain, rng.randbytes(dcid_len), rng.randbytes(rng.choice([0, 8, 20])),
                             pn=rng.randrange(1 << 16), pn_len=rng.randint(1, 4), version=version,
                             pad_to=rng.choice([0, 1200, 1200]), token=rng.randbytes(rng.choice([0, 0, 16])))
    if rng.random() < 0.1:
        packet = mutate(rng, packet)                              # mostly stops authenticating: still a test
    packets = [(C2S, packet)]
    if rng.random() < 0.2:
        packets.append((rng.choice([C2S, S2C]), rng.randbytes(rng.randint(0, 64))))
    return FuzzInput("quic", UDP, rng.randint(1024, 65535), 443, packets)


def tls_records(rng: random.Random, message: bytes, kind: int = 0x16) -> bytes:
    """*message* in 1..3 TLS records (lengths right, or now and then wrong)."""
    out, at = b"", 0
    pieces = rng.choice([1, 1, 2, 3])
    cuts = sorted(rng.sample(range(1, max(2, len(message))), min(pieces - 1, max(0, len(message) - 1))))
    for end in cuts + [len(message)]:
        part = message[at:end]
        length = len(part) if rng.random() < 0.9 else rng.choice(INTERESTING_16)
        out += bytes([kind, 3, rng.choice([1, 3])]) + struct.pack(">H", length) + part
        at = end
    return out


def segments(rng: random.Random, data: bytes, direction: int) -> list[tuple[int, bytes]]:
    """*data* cut into 1..4 TCP segments."""
    if not data:
        return [(direction, b"")]
    cuts = sorted(set(rng.sample(range(1, len(data) + 1), min(len(data), rng.randint(0, 3)))) | {len(data)})
    out, at = [], 0
    for end in cuts:
        out.append((direction, data[at:end]))
        at = end
    return out


def tls(rng: random.Random) -> FuzzInput:
    stream = tls_records(rng, client_hello(rng))
    packets = segments(rng, maybe(rng, 0.2, stream), C2S)
    if rng.random() < 0.6:                 # the server's flight, each side's ChangeCipherSpec, data bursts
        packets += segments(rng, tls_records(rng, rng.randbytes(rng.randint(50, 1500)), 0x16), S2C)
        packets += segments(rng, b"\x14\x03\x03\x00\x01\x01", S2C)
        packets += segments(rng, b"\x14\x03\x03\x00\x01\x01", C2S)
        direction = C2S
        for _ in range(rng.randint(0, 12)):
            if rng.random() < 0.6:
                direction = 1 - direction
            size = rng.choice([rng.randint(1, 300), rng.randint(300, 5000), 565, 1180, 186, 3000, 641, 4649])
            packets += segments(rng, maybe(rng, 0.05, tls_records(rng, rng.randbytes(size), 0x17)), direction)
    return FuzzInput("tls", TCP, rng.randint(1024, 65535), rng.choice([443, 8443, 993]), packets)


def dtls(rng: random.Random) -> FuzzInput:
    body = client_hello(rng)[4:]
    cookie = rng.randbytes(rng.choice([0, 0, 20]))
    body = body[:35 + body[34]] + bytes([len(cookie)]) + cookie + body[35 + body[34]:] if len(body) > 35 else body
    body = b"\xfe\xfd" + body[2:] if rng.random() < 0.8 else body
    body = maybe(rng, 0.4, body)
    frag_len = len(body) if rng.random() < 0.9 else rng.randrange(1 << 16)
    hs = b"\x01" + len(body).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" + frag_len.to_bytes(3, "big") + body
    version = rng.choice([b"\xfe\xff", b"\xfe\xfd", b"\xfe\xfc", b"\x01\x00", b"\x03\x03"])
    length = len(hs) if rng.random() < 0.9 else rng.choice(INTERESTING_16)
    record = b"\x16" + version + b"\x00\x00" + b"\x00" * 6 + struct.pack(">H", length) + hs
    return FuzzInput("dtls", UDP, rng.randint(1024, 65535), rng.choice([443, 4433, 3478]), [(C2S, maybe(rng, 0.1, record))])


def wireguard(rng: random.Random) -> FuzzInput:
    sender = rng.randbytes(4)
    packets = [(C2S, b"\x01\x00\x00\x00" + sender + rng.randbytes(140))] if rng.random() < 0.7 else []
    if rng.random() < 0.7:
        packets.append((S2C, b"\x02\x00\x00\x00" + rng.randbytes(4) + (sender if rng.random() < 0.8 else rng.randbytes(4))
                        + rng.randbytes(80)))
    if rng.random() < 0.2:
        packets.append((rng.choice([C2S, S2C]), b"\x03\x00\x00\x00" + rng.randbytes(60)))
    counter = 0
    for _ in range(rng.randint(0, 6)):
        counter += rng.choice([1, 1, 0, -1, 1000])
        packets.append((rng.choice([C2S, C2S, S2C]), b"\x04\x00\x00\x00" + rng.randbytes(4)
                        + struct.pack("<Q", counter % (1 << 64)) + rng.randbytes(16 * rng.randint(1, 8))))
    packets = [(d, maybe(rng, 0.15, p)) for d, p in packets]
    return FuzzInput("wireguard", UDP, rng.randint(1024, 65535), rng.choice([51820, 443, 53]), packets)


def openvpn(rng: random.Random) -> FuzzInput:
    tcp = rng.random() < 0.5
    session = rng.randbytes(8)

    def message(opcode: int, key_id: int = 0) -> bytes:
        body = bytes([opcode << 3 | key_id]) + session
        if rng.random() < 0.5:
            body += rng.randbytes(rng.choice([20, 32]))                           # tls-auth HMAC
        body += struct.pack(">II", rng.randrange(16), 0) + bytes([rng.randint(0, 3)]) + rng.randbytes(rng.randint(0, 60))
        return maybe(rng, 0.1, body)

    opcodes = [(C2S, rng.choice([7, 7, 1, 10])), (S2C, rng.choice([8, 8, 2]))]
    for _ in range(rng.randint(0, 30)):
        opcodes.append((rng.choice([C2S, S2C]), rng.choice([4, 4, 5, 6, 9, rng.randrange(32)])))
    packets = []
    for direction, opcode in opcodes:
        body = message(opcode, 0 if opcode in (7, 8, 1, 2, 10) else rng.randrange(8))
        if tcp:
            length = len(body) if rng.random() < 0.9 else rng.choice(INTERESTING_16)
            packets += segments(rng, struct.pack(">H", length) + body, direction)
        else:
            packets.append((direction, body))
    return FuzzInput("openvpn-tcp" if tcp else "openvpn-udp", TCP if tcp else UDP, rng.randint(1024, 65535),
                     rng.choice([1194, 443]), packets)


def plaintext(rng: random.Random) -> FuzzInput:
    kind = rng.choice(["dns", "http", "ssh", "ike", "l2tp", "random"])
    if kind == "dns":
        name = rng.choice(NAMES) or "a"
        q = b"".join(bytes([len(p) % 256]) + p.encode() for p in name.split(".")) + b"\x00"
        payload = struct.pack(">6H", rng.randrange(65536), 0x0100, 1, 0, 0, rng.choice([0, 0, 1])) + q + b"\x00\x01\x00\x01"
        if payload[11] == 1:
            payload += b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
        return FuzzInput("dns", UDP, rng.randint(1024, 65535), 53, [(C2S, maybe(rng, 0.5, payload))])
    if kind == "http":
        req = f"GET /{rng.choice(['', 'x', 'a' * 300])} HTTP/1.1\r\nHost: {rng.choice(NAMES)}\r\n\r\n".encode()
        return FuzzInput("http", TCP, rng.randint(1024, 65535), 80, segments(rng, maybe(rng, 0.5, req), C2S))
    if kind == "ssh":
        packets = segments(rng, maybe(rng, 0.5, b"SSH-2.0-OpenSSH_9.2\r\n"), C2S)
        packets += segments(rng, b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n" + rng.randbytes(rng.randint(0, 200)), S2C)
        return FuzzInput("ssh", TCP, rng.randint(1024, 65535), 22, packets)
    if kind == "ike":
        body = rng.randbytes(8) + b"\x00" * 8 + bytes([33, 0x20, 34, 8]) + b"\x00" * 4
        body += struct.pack(">I", 28 + 60) + rng.randbytes(60)
        prefix = b"\x00\x00\x00\x00" if rng.random() < 0.3 else b""
        return FuzzInput("ike", UDP, rng.randint(1024, 65535), 4500 if prefix else 500, [(C2S, maybe(rng, 0.4, prefix + body))])
    if kind == "l2tp":
        body = b"\xc8\x02\x00\x14" + b"\x00" * 8 + struct.pack(">HHHH", 0x8008, 0, 0, 1)
        return FuzzInput("l2tp", UDP, rng.randint(1024, 65535), 1701, [(C2S, maybe(rng, 0.5, body))])
    proto = rng.choice([TCP, UDP])
    return FuzzInput("random", proto, rng.randint(1, 65535), rng.randint(1, 65535),
                     [(rng.choice([C2S, S2C]), rng.randbytes(rng.randint(0, 300))) for _ in range(rng.randint(1, 5))])


GENERATORS = {"quic": quic, "tls": tls, "dtls": dtls, "wireguard": wireguard, "openvpn": openvpn,
              "plaintext": plaintext}
WEIGHTS = {"quic": 4, "tls": 3, "dtls": 2, "wireguard": 1, "openvpn": 2, "plaintext": 2}


def structured_input(rng: random.Random) -> FuzzInput:
    kind = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
    inp = GENERATORS[kind](rng)
    if rng.random() < 0.4:
        inp.wire_seed = rng.randrange(1 << 32)
    return inp


# -- running one input -------------------------------------------------------------

def classifier_instances() -> list:
    """Every classifier with its defaults, plus the parameter settings that
    take other code paths (the GFW's QUIC reading, TLS across records,
    OpenVPN's ACK filter, the allowlist policy)."""
    out = [cls() for cls in CLASSIFIERS.values()]
    out.append(CLASSIFIERS["quic"]({"first_frame_only": True}))
    out.append(CLASSIFIERS["tls"]({"records": True}))
    out.append(CLASSIFIERS["openvpn"]({"ack_filter": True}))
    out.append(CLASSIFIERS["openvpn"]({"opcode_sequence": False}))
    out.append(CLASSIFIERS["wireguard"]({"require_response": True}))
    return out


_CLASSIFIERS = None
_PROFILES = None


def _setup():
    global _CLASSIFIERS, _PROFILES
    if _CLASSIFIERS is None:
        _CLASSIFIERS = classifier_instances()
        _PROFILES = [profiles.load(name) for name in ("gfw-2025", "tspu-2025", "iran-2026")]
    return _CLASSIFIERS, _PROFILES


def _ipv4_frame(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    f = tcp_segment(Endpoints(MAC, MAC, src, dst, 1, 1), 1, 1, 0x18, b"")
    return f[:16] + struct.pack(">H", 20 + len(l4)) + f[18:23] + bytes([proto]) + f[24:34] + l4


def _l4(inp: FuzzInput, direction: int, seq: dict, payload: bytes, flags: int = 0x18) -> tuple[bytes, bytes, bytes]:
    src, dst, sp, dp = ((CLIENT, SERVER, inp.sport, inp.dport) if direction == C2S
                        else (SERVER, CLIENT, inp.dport, inp.sport))
    if inp.proto == TCP:
        f = tcp_segment(Endpoints(MAC, MAC, src, dst, sp, dp), seq[direction], seq[1 - direction], flags, payload)
        return src, dst, f[34:]
    return src, dst, struct.pack(">HHHH", sp, dp, 8 + len(payload), 0) + payload


def _fragments(rng: random.Random, frame: bytes) -> list[bytes]:
    """An IPv4 frame's datagram in fragments (8-byte multiples, now and then
    out of order, repeated or overlapping)."""
    header, body = frame[14:34], frame[34:]
    size = 8 * rng.randint(1, max(1, len(body) // 16 or 1))
    out = []
    for at in range(0, len(body), size):
        part = body[at:at + size]
        more = 0x2000 if at + size < len(body) else 0
        h = header[:2] + struct.pack(">H", 20 + len(part)) + header[4:6] + struct.pack(">H", more | at // 8) + header[8:]
        out.append(frame[:14] + h + part)
    if rng.random() < 0.3:
        rng.shuffle(out)
    if rng.random() < 0.2 and out:
        out.append(mutate(rng, rng.choice(out)))
    return out


def frames_of(inp: FuzzInput) -> list[bytes]:
    """The input as Ethernet frames (TCP after a handshake, with sequence
    numbers), shaped on the wire by ``inp.wire_seed``."""
    rng = random.Random(inp.wire_seed) if inp.wire_seed is not None else None
    v6 = rng is not None and rng.random() < 0.3
    vlans = rng.choice([0, 0, 1, 2, 3]) if rng is not None else 0
    units: list[tuple[int, bytes, int]] = []             # (direction, payload, flags)
    seq = {C2S: 1000, S2C: 5000}
    if inp.proto == TCP:
        units += [(C2S, b"", 0x02), (S2C, b"", 0x12)]
    units += [(d, p, 0x18) for d, p in inp.packets]
    if rng is not None and inp.proto == TCP and rng.random() < 0.5 and len(units) > 3:
        data = units[2:]                                  # retransmit or reorder data segments
        if rng.random() < 0.5:
            data.insert(rng.randrange(len(data) + 1), rng.choice(data))
        else:
            i = rng.randrange(len(data) - 1)
            data[i], data[i + 1] = data[i + 1], data[i]
        units = units[:2] + data
    out = []
    sent = {C2S: 1000, S2C: 5000}
    positions = {}
    for direction, payload, flags in units:
        key = (direction, payload, flags)
        if key in positions:                             # a repeat keeps its sequence number
            seq_at = positions[key]
        else:
            seq_at = sent[direction] - (1 if flags & 0x02 else 0)
            positions[key] = seq_at
            sent[direction] += len(payload)
        seq = {direction: seq_at, 1 - direction: sent[1 - direction]}
        src, dst, l4 = _l4(inp, direction, seq, payload, flags)
        if v6:
            s6, d6 = b"\xfd" + b"\x00" * 14 + src[-1:], b"\x20\x01" + b"\x00" * 13 + dst[-1:]
            l3 = struct.pack(">IHBB", 6 << 28, len(l4), inp.proto, 64) + s6 + d6 + l4
            frame = MAC + MAC + b"\x86\xdd" + l3
        else:
            frame = _ipv4_frame(src, dst, inp.proto, l4)
        frames = [frame]
        if rng is not None and not v6 and len(l4) > 16 and rng.random() < 0.15:
            frames = _fragments(rng, frame)
        for f in frames:
            if vlans:
                f = f[:12] + b"".join(b"\x81\x00" + struct.pack(">H", 100 + i) for i in range(vlans)) + f[12:]
            if rng is not None and rng.random() < 0.05:
                f = mutate(rng, f)                           # header bytes too: lengths, offsets, options
            out.append(f)
    return out


@dataclass
class Finding:
    what: str                      # "exception", "budget", "slow"
    where: str                     # the classifier or parser
    detail: str
    cpu_s: float


def run_input(inp: FuzzInput, per_classifier: dict | None = None, classifiers: list | None = None,
              engines: bool | int = True, cpu_limit: float | None = None) -> tuple[list[Finding], float]:
    """Every classifier directly (*classifiers*: instead of all of them),
    then the engine under three profiles (gfw-2025, tspu-2025, iran-2026;
    an int: only that one of them; False: none), on *inp*; the findings and
    the CPU seconds it took. *per_classifier*, if given, accumulates each
    classifier's CPU seconds. *cpu_limit* (the fuzz benchmark's, CPU_LIMIT_S)
    makes an input that took longer a "slow" finding; the unit tests pass
    none, since time is the benchmark's to judge, not a test's: a loop is
    caught there by the work budget, which counts iterations."""
    every, profs = _setup()
    classifiers = every if classifiers is None else classifiers
    if engines is False:
        profs = []
    elif engines is not True:
        profs = [profs[engines % len(profs)]]
    findings: list[Finding] = []
    t0 = time.process_time()
    key = bytes((inp.proto,)) + CLIENT + SERVER + struct.pack(">HH", inp.sport, inp.dport)
    for clf in classifiers:
        if inp.proto not in clf.transports:
            continue
        c0 = time.process_time()
        flow = Flow(key, inp.proto, CLIENT, inp.sport, SERVER, inp.dport, 0.0)
        try:
            budget.start()
            state = clf.start(flow)
            if state is not None:
                data = {C2S: b"", S2C: b""}
                for direction, payload in inp.packets:
                    budget.start()
                    src, dst, sp, dp = ((CLIENT, SERVER, inp.sport, inp.dport) if direction == C2S
                                        else (SERVER, CLIENT, inp.dport, inp.sport))
                    pkt = Packet(src, dst, inp.proto, sp, dp, payload, flags=0x18 if inp.proto == TCP else 0)
                    flow.packets += 1
                    if inp.proto == TCP and clf.reads_stream:
                        data[direction] += payload
                        pkt = StreamView(pkt, data[direction], False)
                    if clf.update(state, flow, pkt, direction) is not None:
                        break
        except budget.BudgetExceeded as exc:
            findings.append(Finding("budget", clf.name, str(exc), 0.0))
        except Exception as exc:   # noqa: BLE001 - what a fuzzer is for
            findings.append(Finding("exception", clf.name, f"{type(exc).__name__}: {exc}", 0.0))
        if per_classifier is not None:
            per_classifier[clf.name] = per_classifier.get(clf.name, 0.0) + time.process_time() - c0
    try:                                                       # the stand-alone parsers
        for _direction, payload in inp.packets:
            budget.start()
            parse_dns_query(payload)
            parse_client_hello(payload)
    except Exception as exc:   # noqa: BLE001
        findings.append(Finding("exception", "parsers", f"{type(exc).__name__}: {exc}", 0.0))
    frames = frames_of(inp)
    budget.last.clear()
    for profile in profs:
        engine = Engine(profile, seed=1)
        try:
            for i, frame in enumerate(frames):
                budget.start()
                parse_ethernet(frame)
                engine.feed(frame, i * 0.001)
        except Exception as exc:   # noqa: BLE001
            findings.append(Finding("exception", f"engine/{profile.name}", f"{type(exc).__name__}: {exc}", 0.0))
        if engine.stats.get("unparsed"):
            outcome = budget.last[-1]
            findings.append(Finding("budget" if "work budget" in outcome.reason else "exception",
                                    f"engine/{profile.name}", outcome.line(), 0.0))
    budget.stop()
    cpu = time.process_time() - t0
    if cpu_limit is not None and cpu > cpu_limit:
        findings.append(Finding("slow", "input", f"{cpu * 1000:.0f} ms CPU", cpu))
    return findings, cpu


def save(inp: FuzzInput, finding: Finding, directory: Path = CORPUS) -> Path:
    """Keep a failing input in the regression corpus (named by its content)."""
    import hashlib
    directory.mkdir(parents=True, exist_ok=True)
    text = inp.to_json()
    path = directory / f"{finding.what}-{inp.kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    record = json.loads(text)
    record["finding"] = asdict(finding)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def corpus() -> list[tuple[Path, FuzzInput]]:
    return [(p, FuzzInput.from_json(p.read_text())) for p in sorted(CORPUS.glob("*.json"))]


# -- hypothesis strategies (shrinkable: a failure comes back as a small input) ----------

def strategies():
    """``(quic_initials, tls_client_hellos)``: hypothesis strategies of
    FuzzInputs built field by field (imported lazily: the long run does
    not need hypothesis)."""
    from hypothesis import strategies as st

    names = st.one_of(st.sampled_from(NAMES), st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", max_size=80))
    extension = st.one_of(names.map(sni_extension),
                          st.lists(st.sampled_from(["h3", "h2", "google.com", ""]), min_size=1, max_size=3)
                          .map(alpn_extension),
                          st.binary(max_size=64).map(ech_outer_extension),
                          st.tuples(st.integers(0, 65535), st.binary(max_size=32)))
    hellos = st.builds(lambda exts, ciphers, edits: _edit(hello_message(exts, tuple(ciphers)), edits),
                       st.lists(extension, max_size=6), st.lists(st.integers(0, 65535), min_size=1, max_size=6),
                       st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=3))

    @st.composite
    def frames(draw):
        hello = draw(hellos)
        cut = draw(st.integers(0, len(hello)))
        crypto = [crypto_frame(hello[:cut], 0, draw(st.one_of(st.none(), st.integers(0, 1 << 14)))),
                  crypto_frame(hello[cut:], draw(st.one_of(st.just(cut), st.integers(0, 1 << 14))))]
        other = draw(st.lists(st.one_of(st.just(b"\x01"), st.binary(min_size=1, max_size=8).map(lambda b: b"\x00" * len(b)),
                                        st.binary(max_size=12)), max_size=4))
        order = draw(st.permutations(crypto + other))
        return b"".join(order)

    quic_initials = st.builds(
        lambda plain, dcid, scid, pn_len, version, pad, sport: FuzzInput(
            "quic", UDP, sport, 443, [(C2S, protect_initial(plain, dcid, scid, pn=1, pn_len=pn_len, version=version,
                                                            pad_to=pad))]),
        frames(), st.binary(max_size=21), st.binary(max_size=20), st.integers(1, 4),
        st.sampled_from([QUIC_V1, QUIC_V1, QUIC_V2]), st.sampled_from([0, 1200]), st.integers(1024, 65535))
    tls_client_hellos = st.builds(
        lambda hello, sizes, sport: FuzzInput("tls", TCP, sport, 443, _split(tls_records(random.Random(len(hello)), hello),
                                                                             sizes)),
        hellos, st.lists(st.integers(1, 600), max_size=4), st.integers(1024, 65535))
    return quic_initials, tls_client_hellos


def _edit(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in edits:
        if out:
            out[at % len(out)] = value
    return bytes(out)


def _split(data: bytes, sizes: list[int]) -> list[tuple[int, bytes]]:
    out, at = [], 0
    for size in sizes:
        if at < len(data):
            out.append((C2S, data[at:at + size]))
            at += size
    return out + ([(C2S, data[at:])] if at < len(data) or not out else [])
