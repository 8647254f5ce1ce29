"""Geneva's published China HTTP strategies, replayed against the emulated censor.

Geneva (Bock, Hughey, Qiang, Levin: "Geneva: Evolving Censorship Evasion
Strategies", CCS 2019) evolved packet-manipulation strategies against the
GFW and published each one as a string in its strategy language with its
success rate in China (the repository's ``strategies.md``; 24 strategies
succeed or fail against China's HTTP censorship). Those strings and rates are
facts cited here; the interpreter below is this project's own: it parses the
published syntax and applies each manipulation to packets built with scapy.

The language, as the paper defines it: a strategy is a forest of action
trees for outbound packets (and one for inbound packets, after ``\\/``; none
of the 24 uses it). A tree is ``[PROTO:field:value]-ACTION-|``: its trigger
names the packets it takes (here TCP flags, compared exactly), its action
says what is sent instead:

* ``duplicate(A,B)``: two copies, the first through A, the second through B;
* ``tamper{PROTO:field:replace:V}(A,)`` / ``tamper{PROTO:field:corrupt}``:
  set the field to V, or to a random value, then continue with A;
* ``fragment{tcp:N:inOrder}(A,B)``: cut the TCP payload after N bytes (-1:
  in half; a packet without payload is duplicated instead), the first piece
  through A and the second through B, sent in order or reversed;
  ``fragment{ip:N:inOrder}`` cuts the IP datagram at N*8 bytes;
* ``drop``: nothing is sent; an empty branch sends the packet as it is.

Checksums, lengths and the data offset are recomputed after tampering,
except the ones a strategy set itself (a corrupted checksum stays corrupt).

Three ways to run them:

* :func:`apply` turns one packet into what the strategy sends (pure; unit
  tested byte for byte);
* :func:`offline_replay` feeds a whole connection's packets (the client's,
  through the strategy, and the server's answers a receiving host would
  send) to the middlebox's engine with a profile: what the censor decides,
  with no testbed;
* :func:`live_replay` runs the strategies from a client node of a running
  testbed against its web server (``python -m tunnelwall.harness.geneva
  trials ...`` inside the node speaks TCP itself, with scapy), and
  ``benchmarks/geneva.py`` makes the table of docs/geneva.md.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tunnelwall.base.errors import TunnelwallError

GENEVA = "Bock et al., Geneva: Evolving Censorship Evasion Strategies, CCS 2019 (strategies.md of its repository)"


@dataclass(frozen=True)
class Published:
    """One strategy as published: its DNA and its success rate in China."""
    id: str
    dna: str
    china: float                 # fraction of forbidden requests that got through, as published
    insertion_by_ttl: bool = False   # its insertion packet must die between the censor and the server

    @property
    def evades(self) -> bool:
        """The published direction: at least half the requests got through."""
        return self.china >= 0.5


# In the order of Geneva's strategies.md (the s01..s24).
STRATEGIES: tuple[Published, ...] = (
    Published("s01", r"[TCP:flags:PA]-duplicate(tamper{TCP:dataofs:replace:10}(tamper{TCP:chksum:corrupt},),)-|", 0.98),
    Published("s02", r"[TCP:flags:PA]-duplicate(tamper{TCP:dataofs:replace:10}(tamper{IP:ttl:replace:10},),)-|", 0.98,
              True),
    Published("s03", r"[TCP:flags:PA]-duplicate(tamper{TCP:dataofs:replace:10}(tamper{TCP:ack:corrupt},),)-|", 0.94),
    Published("s04", r"[TCP:flags:PA]-duplicate(tamper{TCP:options-wscale:corrupt}(tamper{TCP:dataofs:replace:8},),)-|",
              0.98),
    Published("s05", r"[TCP:flags:PA]-duplicate(tamper{TCP:load:corrupt}(tamper{TCP:chksum:corrupt},),)-|", 0.80),
    Published("s06", r"[TCP:flags:PA]-duplicate(tamper{TCP:load:corrupt}(tamper{IP:ttl:replace:8},),)-|", 0.98, True),
    Published("s07", r"[TCP:flags:PA]-duplicate(tamper{TCP:load:corrupt}(tamper{TCP:ack:corrupt},),)-|", 0.87),
    Published("s08", r"[TCP:flags:S]-duplicate(,tamper{TCP:load:corrupt})-|", 0.03),
    Published("s09", r"[TCP:flags:PA]-duplicate(tamper{IP:len:replace:64},)-|", 0.03),
    Published("s10", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:R}(tamper{TCP:chksum:corrupt},))-|", 0.95),
    Published("s11", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:R}(tamper{IP:ttl:replace:10},))-|", 0.87, True),
    Published("s12", r"[TCP:flags:A]-duplicate(,tamper{TCP:options-md5header:corrupt}(tamper{TCP:flags:replace:R},))-|",
              0.86),
    Published("s13", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:RA}(tamper{TCP:chksum:corrupt},))-|", 0.80),
    Published("s14", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:RA}(tamper{IP:ttl:replace:10},))-|", 0.94, True),
    Published("s15", r"[TCP:flags:A]-duplicate(,tamper{TCP:options-md5header:corrupt}(tamper{TCP:flags:replace:R},))-|",
              0.94),
    Published("s16", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:FRAPUEN}(tamper{TCP:chksum:corrupt},))-|", 0.89),
    Published("s17", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:FREACN}(tamper{IP:ttl:replace:10},))-|", 0.96,
              True),
    Published("s18", r"[TCP:flags:A]-duplicate(,tamper{TCP:flags:replace:FRAPUN}(tamper{TCP:options-md5header:corrupt},))-|",
              0.94),
    Published("s19", r"[TCP:flags:PA]-fragment{tcp:8:False}-| [TCP:flags:A]-tamper{TCP:seq:corrupt}-|", 0.94),
    Published("s20", r"[TCP:flags:PA]-fragment{tcp:8:True}(,fragment{tcp:4:True})-|", 0.98),
    Published("s21", r"[TCP:flags:PA]-fragment{tcp:-1:True}-|", 0.03),
    Published("s22", r"[TCP:flags:PA]-duplicate(tamper{TCP:flags:replace:F}(tamper{IP:len:replace:78},),)-|", 0.53),
    Published("s23", r"[TCP:flags:S]-duplicate(tamper{TCP:flags:replace:SA},)-|", 0.03),
    Published("s24", r"[TCP:flags:PA]-tamper{TCP:options-uto:corrupt}-|", 0.03),
)
BY_ID = {s.id: s for s in STRATEGIES}


class GenevaSyntaxError(TunnelwallError):
    """A strategy string this interpreter cannot read (with the position)."""


# -- the language ------------------------------------------------------------------

@dataclass(frozen=True)
class Trigger:
    proto: str          # IP | TCP
    field: str
    value: str


@dataclass(frozen=True)
class Duplicate:
    left: object = None          # None: send as is
    right: object = None


@dataclass(frozen=True)
class Tamper:
    proto: str
    field: str
    mode: str                    # replace | corrupt | add
    value: str | None = None
    then: object = None


@dataclass(frozen=True)
class Fragment:
    kind: str                    # tcp (segments) | ip (fragments)
    offset: int                  # tcp: payload bytes in the first piece (-1: half); ip: 8-byte units
    in_order: bool
    left: object = None
    right: object = None


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Tree:
    trigger: Trigger
    action: object               # None: the packet goes out unchanged


@dataclass(frozen=True)
class Strategy:
    outbound: tuple[Tree, ...]
    inbound: tuple[Tree, ...] = ()


class _Reader:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, what: str):
        raise GenevaSyntaxError(f"strategy {self.text!r}: {what} at character {self.pos + 1}")

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def take(self, s: str) -> None:
        if not self.peek(s):
            self.fail(f"expected {s!r}")
        self.pos += len(s)

    def until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start:self.pos]

    def spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1


def parse(dna: str) -> Strategy:
    """The strategy a DNA string describes; :class:`GenevaSyntaxError` if it
    is not one."""
    r = _Reader(dna)
    forests: list[list[Tree]] = [[]]
    r.spaces()
    while r.pos < len(r.text):
        if r.peek("\\/"):
            r.take("\\/")
            if len(forests) == 2:
                r.fail("a second '\\/'")
            forests.append([])
        else:
            forests[-1].append(_tree(r))
        r.spaces()
    return Strategy(tuple(forests[0]), tuple(forests[1]) if len(forests) == 2 else ())


def _tree(r: _Reader) -> Tree:
    r.take("[")
    parts = r.until("]").split(":")
    r.take("]")
    if len(parts) != 3 or parts[0] not in ("TCP", "IP"):
        r.fail("a trigger [PROTO:field:value] with PROTO TCP or IP")
    r.take("-")
    action = None if r.peek("|") else _action(r)
    if action is not None:
        r.take("-")
    r.take("|")
    return Tree(Trigger(*parts), action)


def _action(r: _Reader):
    name = r.until("{(,)-|")
    params = None
    if r.peek("{"):
        r.take("{")
        params = r.until("}").split(":")
        r.take("}")
    left = right = None
    if r.peek("("):
        r.take("(")
        left = None if r.peek(",") else _action(r)
        r.take(",")
        right = None if r.peek(")") else _action(r)
        r.take(")")
    if name == "duplicate":
        return Duplicate(left, right)
    if name == "drop":
        return Drop()
    if name == "tamper":
        if params is None or len(params) not in (3, 4) or params[2] not in ("replace", "corrupt", "add"):
            r.fail("tamper{PROTO:field:replace|add:VALUE} or tamper{PROTO:field:corrupt}")
        if right is not None:
            r.fail("tamper has one branch")
        return Tamper(params[0], params[1], params[2], params[3] if len(params) == 4 else None, left)
    if name == "fragment":
        if params is None or len(params) != 3 or params[0] not in ("tcp", "ip") or params[2] not in ("True", "False"):
            r.fail("fragment{tcp|ip:OFFSET:True|False}")
        try:
            offset = int(params[1])
        except ValueError:
            r.fail("a whole-number fragment offset")
        return Fragment(params[0], offset, params[2] == "True", left, right)
    r.fail(f"unknown action {name!r}")


# -- the manipulations -----------------------------------------------------------------

@dataclass
class Wire:
    """A packet on its way out, with the fields a strategy set itself
    (these are not recomputed when the packet is built)."""
    pkt: object                          # scapy IP
    fixed: set = field(default_factory=set)

    def copy(self) -> "Wire":
        return Wire(self.pkt.copy(), set(self.fixed))


TCP_FLAG_ORDER = "FSRPAUECN"
OPTION_KINDS = {"options-md5header": 19, "options-wscale": 3, "options-uto": 28, "options-mss": 2,
                "options-sackok": 4, "options-timestamp": 8}
EMPTY_LOAD_BYTES = 16        # our choice: how much random data "load:corrupt" puts on a packet that has none


def triggered(trigger: Trigger, pkt) -> bool:
    """Whether *pkt* (scapy IP) fires *trigger*: flags are compared exactly
    (``[TCP:flags:A]`` takes a bare ACK, not a PSH/ACK)."""
    from scapy.layers.inet import IP, TCP
    layer = pkt.getlayer(TCP if trigger.proto == "TCP" else IP)
    if layer is None:
        return False
    if trigger.field == "flags":
        return flag_string(int(layer.flags)) == flag_string_of(trigger.value)
    return str(getattr(layer, trigger.field, None)) == trigger.value


def flag_string(bits: int) -> str:
    return "".join(c for i, c in enumerate(TCP_FLAG_ORDER) if bits >> i & 1)


def flag_string_of(letters: str) -> str:
    return flag_string(flag_bits(letters))


def flag_bits(letters: str) -> int:
    bits = 0
    for c in letters:
        if c not in TCP_FLAG_ORDER:
            raise GenevaSyntaxError(f"unknown TCP flag {c!r} in {letters!r}")
        bits |= 1 << TCP_FLAG_ORDER.index(c)
    return bits


def apply(strategy: Strategy, pkt, rng: random.Random | None = None) -> list[bytes]:
    """The IP packets (bytes) *strategy* sends in place of *pkt* (a scapy IP
    packet): the first outbound tree whose trigger fires rewrites it, then
    the other trees whose triggers fire on the results (Geneva runs every
    tree of the forest in turn)."""
    rng = rng or random.Random()
    wires = [Wire(pkt.copy())]
    for tree in strategy.outbound:
        out = []
        for w in wires:
            out.extend(_run(tree.action, w, rng) if triggered(tree.trigger, w.pkt) else [w])
        wires = out
    return [build(w) for w in wires]


def _run(action, w: Wire, rng: random.Random) -> list[Wire]:
    if action is None:
        return [w]
    if isinstance(action, Drop):
        return []
    if isinstance(action, Duplicate):
        return _run(action.left, w.copy(), rng) + _run(action.right, w.copy(), rng)
    if isinstance(action, Tamper):
        _tamper(action, w, rng)
        return _run(action.then, w, rng)
    if isinstance(action, Fragment):
        first, second = (_segment if action.kind == "tcp" else _ip_fragment)(action, w)
        if not action.in_order:
            first, second = second, first
        return _run(action.left, first, rng) + _run(action.right, second, rng)
    raise TypeError(action)


def _tamper(t: Tamper, w: Wire, rng: random.Random) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.packet import Raw
    layer = w.pkt.getlayer(TCP if t.proto == "TCP" else IP)
    if layer is None:
        return
    if t.field == "load":
        old = bytes(layer.payload)
        data = t.value.encode() if t.mode == "replace" else rng.randbytes(len(old) or EMPTY_LOAD_BYTES)
        layer.remove_payload()
        layer.add_payload(Raw(data))
        return
    if t.field.startswith("options-"):
        kind = OPTION_KINDS.get(t.field)
        if kind is None:
            raise GenevaSyntaxError(f"unknown TCP option field {t.field!r}")
        options = [o for o in layer.options if _option_kind(o) != kind]
        options.append(_option(kind, t, rng))
        layer.options = options
        return
    if t.field == "flags":
        value = flag_bits(t.value) if t.mode == "replace" else rng.randrange(1 << 9)
        layer.flags = value
        return
    width = {"ttl": 8, "len": 16, "chksum": 16, "ack": 32, "seq": 32, "dataofs": 4, "window": 16, "urgptr": 16,
             "id": 16, "tos": 8, "ihl": 4, "sport": 16, "dport": 16, "frag": 13, "proto": 8, "version": 4}.get(t.field)
    if width is None:
        raise GenevaSyntaxError(f"tamper of {t.proto}:{t.field} is not supported")
    old = getattr(layer, t.field)
    if t.mode == "corrupt":
        value = rng.randrange(1 << width)
    elif t.mode == "add":
        value = ((old or 0) + int(t.value)) % (1 << width)
    else:
        value = int(t.value)
    setattr(layer, t.field, value)
    w.fixed.add(f"{t.proto}:{t.field}")


def _option_kind(option) -> int | None:
    name = option[0]
    if isinstance(name, int):
        return name
    return {"MSS": 2, "WScale": 3, "SAckOK": 4, "Timestamp": 8}.get(name)


def _option(kind: int, t: Tamper, rng: random.Random):
    if kind == 3:
        return ("WScale", rng.randrange(256) if t.mode == "corrupt" else int(t.value))
    if kind == 19:                                   # RFC 2385 MD5 signature: 16 bytes
        return (19, rng.randbytes(16) if t.mode == "corrupt" else bytes.fromhex(t.value))
    if kind == 28:                                   # RFC 5482 user timeout: 2 bytes
        return (28, rng.randbytes(2) if t.mode == "corrupt" else int(t.value).to_bytes(2, "big"))
    if kind == 2:
        return ("MSS", rng.randrange(1 << 16) if t.mode == "corrupt" else int(t.value))
    if kind == 4:
        return ("SAckOK", b"")
    return ("Timestamp", (rng.randrange(1 << 32), 0) if t.mode == "corrupt" else (int(t.value), 0))


def _segment(f: Fragment, w: Wire) -> tuple[Wire, Wire]:
    from scapy.layers.inet import TCP
    from scapy.packet import Raw
    tcp = w.pkt.getlayer(TCP)
    payload = bytes(tcp.payload) if tcp is not None else b""
    if not payload:
        return w, w.copy()                   # nothing to cut: two copies, as Geneva defines it
    cut = len(payload) // 2 if f.offset == -1 or f.offset > len(payload) - 1 else f.offset
    first, second = w.copy(), w.copy()
    for piece, data in ((first, payload[:cut]), (second, payload[cut:])):
        layer = piece.pkt.getlayer(TCP)
        layer.remove_payload()
        layer.add_payload(Raw(data))
    second.pkt.getlayer(TCP).seq = (tcp.seq + cut) % (1 << 32)
    return first, second


def _ip_fragment(f: Fragment, w: Wire) -> tuple[Wire, Wire]:
    from scapy.layers.inet import IP, fragment
    body = bytes(w.pkt.getlayer(IP).payload)
    if len(body) <= 8:
        return w, w.copy()
    size = (len(body) // 2) // 8 * 8 if f.offset == -1 or f.offset * 8 >= len(body) else f.offset * 8
    pieces = fragment(IP(build(w)), fragsize=size)
    first = pieces[0]
    rest = b"".join(bytes(p.payload) for p in pieces[1:])
    second = pieces[1].copy()
    second.remove_payload()
    second.flags = 0
    from scapy.packet import Raw
    second.add_payload(Raw(rest))
    del second.len, second.chksum
    return Wire(first, {"IP:frag"}), Wire(second, {"IP:frag"})


def build(w: Wire) -> bytes:
    """The packet's bytes, with lengths, checksums and the data offset
    recomputed unless the strategy set them."""
    from scapy.layers.inet import IP, TCP
    pkt = w.pkt.copy()
    ip = pkt.getlayer(IP)
    tcp = pkt.getlayer(TCP)
    if "IP:len" not in w.fixed:
        ip.len = None
    if "IP:chksum" not in w.fixed:
        ip.chksum = None
    if tcp is not None:
        if "TCP:dataofs" not in w.fixed:
            tcp.dataofs = None
        if "TCP:chksum" not in w.fixed:
            tcp.chksum = None
    # With a length the strategy set, scapy still sums the TCP checksum over
    # the bytes it has (as Geneva, built on scapy, sent them); a receiver
    # sums what the IP length says.
    return bytes(pkt)


# -- offline: the censor's decision, without a testbed ---------------------------------

CLIENT, SERVER = "10.0.0.11", "198.18.0.10"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


# Geneva tampers the client operating system's own packets (its engine sits
# on NFQUEUE), so its strategies act on the headers that system writes. A
# Linux client (net.ipv4.tcp_timestamps, tcp_sack and tcp_window_scaling are
# on by default) puts MSS, SACK-permitted, a timestamp and window scaling on
# its SYN, and NOP, NOP and a timestamp (a 32-byte header) on every later
# segment. Strategies that add an option and then set the data offset
# depend on it: s04 appends a window-scale option (header 36 bytes) and sets
# the offset to 8 words, so the server takes the option's 4 bytes as the
# first data bytes, in front of a whole request line (a bare 20-byte header
# would have made 8 request bytes into options instead, cutting "GET / HT").
LINUX_WSCALE = 7


def client_options(flags: str, tsval: int, tsecr: int = 0) -> list:
    """The TCP options a Linux client puts on a segment with *flags*."""
    if "S" in flags:
        return [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (tsval, 0)), ("NOP", None),
                ("WScale", LINUX_WSCALE)]
    return [("NOP", None), ("NOP", None), ("Timestamp", (tsval, tsecr))]


def timestamp_of(tcp) -> int:
    """The TSval of a scapy TCP layer's timestamp option (0 without one)."""
    return next((o[1][0] for o in tcp.options if o[0] == "Timestamp"), 0)


def request_bytes(host: str) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tunnelwall-geneva\r\n\r\n".encode()


@dataclass(frozen=True)
class OfflineResult:
    strategy: str
    profile: str
    action: str | None           # the censor's verdict on the connection's flow (None: it never decided)
    rule: str | None

    @property
    def evaded(self) -> bool:
        return self.action not in ("drop", "reset")


def offline_frames(strategy: Published | str, host: str = "www.twitter.com", seed: int = 1,
                   sport: int = 40000) -> list[tuple[float, bytes]]:
    """One connection with *strategy* as the censor sees it, as (time,
    Ethernet frame): the client's SYN, handshake ACK and request through
    the strategy, the server's SYN/ACK in between."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    published = BY_ID[strategy] if isinstance(strategy, str) else strategy
    rules = parse(published.dna)
    rng = random.Random(seed)
    isn, sisn = 1000, 5000
    frames: list[tuple[float, bytes]] = []

    def add(raw: bytes, reverse: bool = False):
        src, dst = (SERVER_MAC, CLIENT_MAC) if reverse else (CLIENT_MAC, SERVER_MAC)
        frames.append(((len(frames) + 1) * 0.001, bytes(Ether(src=src, dst=dst) / IP(raw))))

    tsval, server_tsval = 100_000, 700_000

    def client(flags: str, seq: int, ack: int = 0, payload: bytes = b""):
        pkt = IP(src=CLIENT, dst=SERVER, ttl=64) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack,
                                                       options=client_options(flags, tsval, server_tsval))
        if payload:
            pkt = pkt / Raw(payload)
        for raw in apply(rules, pkt, rng):
            add(raw)

    client("S", isn)
    add(bytes(IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=sport, flags="SA", seq=sisn, ack=isn + 1,
                                               options=[("MSS", 1460), ("SAckOK", b""),
                                                        ("Timestamp", (server_tsval, tsval)), ("NOP", None),
                                                        ("WScale", LINUX_WSCALE)])), True)
    client("A", isn + 1, sisn + 1)
    client("PA", isn + 1, sisn + 1, request_bytes(host))
    return frames


def blocking_outcome(flows) -> tuple[str | None, str | None]:
    """(action, rule) of the connection: the last blocking verdict among its
    flows (a strategy may make the censor see several), else the last one."""
    decided = [f.verdict for f in flows if f.verdict is not None]
    blocking = [v for v in decided if v.action in ("drop", "reset")]
    final = blocking[-1] if blocking else (decided[-1] if decided else None)
    return (final.action, final.rule) if final else (None, None)


def offline_replay(strategy: Published | str, profile, host: str = "www.twitter.com", seed: int = 1,
                   sport: int = 40000) -> OfflineResult:
    """The connection of :func:`offline_frames` fed to the engine of
    *profile* (a loaded Profile). Only the censor is modelled: what the
    server does with the insertion packets is the live replay's business."""
    from tunnelwall.middlebox.engine import Engine
    published = BY_ID[strategy] if isinstance(strategy, str) else strategy
    engine = Engine(profile, seed=seed)
    flows = []
    for ts, frame in offline_frames(published, host, seed, sport):
        flow = engine.feed(frame, ts)
        if flow is not None:
            flows.append(flow)
    action, rule = blocking_outcome(flows)
    return OfflineResult(published.id, profile.name, action, rule)


def offline_table(profile_name: str, overrides: tuple[str, ...] = ("http-host.residual=0",)) -> list[OfflineResult]:
    """Every published strategy through *profile_name*'s engine: the offline
    vector set a fidelity check can run without a testbed."""
    from tunnelwall.middlebox import profiles
    prof = profiles.apply_overrides(profiles.load(profile_name), list(overrides))
    return [offline_replay(s, prof) for s in STRATEGIES]


# -- live: from a client node against the testbed's web server -------------------------

EVADED, RESET, NOTHING = "evaded", "reset", "nothing"


@dataclass(frozen=True)
class Trial:
    strategy: str
    host: str
    outcome: str               # evaded | reset | nothing
    detail: str = ""
    sport: int = 0             # the client's port (the verdict log names flows by it)


def run_trial(published: Published, server: str, host: str, gw_mac: str, iface: str = "eth0",
              wait: float = 2.0, sport: int | None = None) -> Trial:
    """One HTTP request for *host* with *published*'s manipulations, from
    this node (run inside a client's namespace). Our TCP lives here, with
    scapy: the handshake, the request, and the wait for an answer. Outcome:
    ``evaded`` (the server's HTTP answer arrived), ``reset`` (a RST came
    first), ``nothing``."""
    from scapy.all import IP, TCP, AsyncSniffer, Ether, Raw, conf, get_if_hwaddr, sendp
    conf.verb = 0
    rules = parse(published.dna)
    rng = random.Random()
    sport = sport or rng.randint(20000, 60000)
    isn = rng.randint(1, 2**31)
    l2 = Ether(src=get_if_hwaddr(iface), dst=gw_mac)
    received: list = []
    ready = threading.Event()
    sniffer = AsyncSniffer(iface=iface, filter=f"tcp and src host {server} and src port 80 and dst port {sport}",
                           store=False, prn=received.append, started_callback=ready.set)
    sniffer.start()
    try:
        if not ready.wait(5):
            return Trial(published.id, host, NOTHING, "sniffer did not start", sport)

        # A Linux client's options (client_options), with a millisecond clock for the timestamps.
        echo = {"tsecr": 0}

        def send(flags: str, seq: int, ack: int = 0, payload: bytes = b""):
            tsval = int(time.monotonic() * 1000) % (1 << 32)
            pkt = IP(dst=server, ttl=64) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, window=64240,
                                               options=client_options(flags, tsval, echo["tsecr"]))
            if payload:
                pkt = pkt / Raw(payload)
            for raw in apply(rules, pkt, rng):
                sendp(l2 / IP(raw), iface=iface)

        send("S", isn)
        synack = first_packet(received, lambda p: int(p[TCP].flags) & 0x12 == 0x12 and p[TCP].ack == isn + 1, 3)
        if synack is None:
            rst = any(int(p[TCP].flags) & 0x04 for p in received)
            return Trial(published.id, host, RESET if rst else NOTHING, "no SYN/ACK", sport)
        echo["tsecr"] = timestamp_of(synack[TCP])
        sack = (synack[TCP].seq + 1) % (1 << 32)
        send("A", isn + 1, sack)
        send("PA", isn + 1, sack, request_bytes(host))
        after_synack = next((i + 1 for i, p in enumerate(list(received)) if p is synack), 0)
        answer = first_packet(received, lambda p: bool(int(p[TCP].flags) & 0x04) or b"HTTP/1." in bytes(p[TCP].payload),
                              wait, after_synack)
        if answer is None:
            return Trial(published.id, host, NOTHING, "no answer", sport)
        if int(answer[TCP].flags) & 0x04:
            return Trial(published.id, host, RESET, "RST", sport)
        status = bytes(answer[TCP].payload).split(b"\r\n", 1)[0].decode("ascii", "replace")
        # A clean end for the server (the flow is decided; this RST only frees its socket).
        sendp(l2 / IP(dst=server) / TCP(sport=sport, dport=80, flags="R", seq=(isn + 1 + 10_000) % (1 << 32)),
              iface=iface)
        return Trial(published.id, host, EVADED, status, sport)
    finally:
        sniffer.stop()


def first_packet(received: list, test, seconds: float, start: int = 0):
    """The first packet of *received* (a list a sniffer appends to) from
    index *start* on that passes *test*, so far or within *seconds*; None
    if none does by then. Also used by tests/integration/wire.py."""
    deadline = time.monotonic() + seconds
    seen = start
    while time.monotonic() < deadline:
        packets = list(received)
        for pkt in packets[seen:]:
            if test(pkt):
                return pkt
        seen = len(packets)
        time.sleep(0.01)
    return None


@dataclass(frozen=True)
class ReplayRow:
    """One strategy against one profile, live."""
    strategy: str
    dna: str
    profile: str
    published: float
    blocked_trials: int
    evaded: int
    trials: int
    controls_ok: int
    controls: int
    insertion_by_ttl: bool
    server_min_ttl: int

    @property
    def rate(self) -> float:
        return self.evaded / self.trials if self.trials else 0.0

    @property
    def agrees(self) -> bool:
        return (self.rate >= 0.5) == (self.published >= 0.5)


def live_replay(state, profile: str, strategies: list[str] | None = None, trials: int = 20, controls: int = 5,
                blocked_host: str = "www.twitter.com", allowed_host: str = "www.example.org",
                client: str = "c1", server: str = "198.18.0.10", server_node: str = "web", server_min_ttl: int = 0,
                timeout: float = 900.0) -> list[ReplayRow]:
    """Replay *strategies* (ids, default all 24) from *client* of the running
    testbed *state* (its profile must be *profile*, with residual blocking off
    so each trial starts clean). The distance TTL-limited insertion packets
    need is the topology's (``hops:``; isp.yaml puts the server 10 routers
    past the censor); *server_min_ttl* > 0 also has the server node drop
    packets that arrive with a lower TTL, which stood in for that distance
    before topologies had it and still serves topologies without hops."""
    ids = strategies or [s.id for s in STRATEGIES]
    gw_mac = state.layout.nodes["isp"].interfaces["eth0"].mac
    web = server_node
    table = f"tw_geneva_{os.getpid()}"
    if server_min_ttl:
        _netns(web, ["nft", "add", "table", "ip", table])
        _netns(web, ["nft", "add", "chain", "ip", table, "in", "{ type filter hook prerouting priority -300 ; }"])
        _netns(web, ["nft", "add", "rule", "ip", table, "in", "ip", "ttl", "lt", str(server_min_ttl), "drop"])
    try:
        cmd = ["ip", "netns", "exec", f"tw-{client}", sys.executable, "-m", "tunnelwall.harness.geneva", "trials",
               "--server", server, "--gw-mac", gw_mac, "--trials", str(trials), "--controls", str(controls),
               "--blocked-host", blocked_host, "--allowed-host", allowed_host, "--strategies", ",".join(ids)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise TunnelwallError(f"geneva replay on {client} failed: {res.stderr.strip().splitlines()[-1:]}")
        got = [Trial(**json.loads(line)) for line in res.stdout.splitlines() if line.startswith("{")]
    finally:
        if server_min_ttl:
            _netns(web, ["nft", "delete", "table", "ip", table], check=False)
    rows = []
    for sid in ids:
        p = BY_ID[sid]
        forbidden = [t for t in got if t.strategy == sid and t.host == blocked_host]
        allowed = [t for t in got if t.strategy == sid and t.host == allowed_host]
        rows.append(ReplayRow(sid, p.dna, profile, p.china, sum(t.outcome != EVADED for t in forbidden),
                              sum(t.outcome == EVADED for t in forbidden), len(forbidden),
                              sum(t.outcome == EVADED for t in allowed), len(allowed), p.insertion_by_ttl,
                              server_min_ttl))
    return rows


def _netns(node: str, argv: list[str], check: bool = True) -> None:
    subprocess.run(["ip", "netns", "exec", f"tw-{node}", *argv], check=check, capture_output=True)


def _trials_main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="geneva trials")
    ap.add_argument("--server", required=True)
    ap.add_argument("--gw-mac", required=True)
    ap.add_argument("--strategies", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--controls", type=int, default=5)
    ap.add_argument("--blocked-host", default="www.twitter.com")
    ap.add_argument("--allowed-host", default="www.example.org")
    args = ap.parse_args(argv)
    # Our TCP lives in this process: keep the kernel from answering the
    # server's SYN/ACKs with RSTs of its own. (The strategies' own RSTs
    # leave through a packet socket, which this hook does not see.)
    table = f"tw_geneva_{os.getpid()}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    try:
        subprocess.run(["nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"],
                       check=True)
        subprocess.run(["nft", "add", "rule", "inet", table, "out", "ip", "daddr", args.server, "tcp", "flags", "rst",
                        "drop"], check=True)
        for sid in args.strategies.split(","):
            published = BY_ID[sid]
            for host, n in ((args.blocked_host, args.trials), (args.allowed_host, args.controls)):
                for _ in range(n):
                    trial = run_trial(published, args.server, host, args.gw_mac)
                    print(json.dumps(trial.__dict__), flush=True)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table])
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "trials":
        sys.exit(_trials_main(sys.argv[2:]))
    sys.exit("usage: python -m tunnelwall.harness.geneva trials --server IP --gw-mac MAC --strategies s01,...")


# -- the fidelity verb's vector set (offline: the censor alone) ------------------------

# Where the censor alone disagrees with the published direction, and why
# (the live replay adds the server's side; docs/geneva.md).
OFFLINE_NOTES = {
    ("s09", "gfw-2020"): "without reassembly the HTTP reader decides on the first request packet, here the "
                         "truncated copy (IP length 64) whose Host line is cut, and reads no further; the 2019 GFW "
                         "read the full copy that follows (3 % got through)",
    ("s21", "gfw-2020"): "gfw-2020 reassembles nothing, so a Host line split in two in-order segments goes "
                         "unread; the 2019 GFW caught this two-segment split (3 %) while s19/s20's splits got "
                         "through (94-98 %): it reassembled some splits, which the profile does not model",
    ("s19", "gfw-2025"): "dated: today's GFW reassembles out-of-order segments (Hoang et al., GFWeb, USENIX "
                         "Security 2024); Geneva's 94 % is from 2019",
    ("s20", "gfw-2025"): "dated: today's GFW reassembles segmented requests (Hoang et al., GFWeb, USENIX "
                         "Security 2024); Geneva's 98 % is from 2019",
}


def fidelity_vectors() -> list:
    """Every published strategy as a vector for ``tunnelwall fidelity``
    (gfw-2020, the era it was measured in, and gfw-2025): the censor's
    verdict on the strategy's connection, published direction "not blocked"
    where at least half the requests got through."""
    from tunnelwall.middlebox.fidelity import BLOCKED, NOT_BLOCKED, Vector

    def outcome(_profile, flows, _engine):
        action, rule = blocking_outcome(flows)
        if action in ("drop", "reset"):
            return BLOCKED, f"{action} by {rule}"
        return NOT_BLOCKED, "no blocking verdict"
    out = []
    for s in STRATEGIES:
        for prof in ("gfw-2020", "gfw-2025"):
            out.append(Vector("geneva", f"{s.id}: {s.dna}", lambda s=s: offline_frames(s),
                              NOT_BLOCKED if s.evades else BLOCKED, f"{GENEVA}; China {s.china:.0%}", (prof,),
                              outcome=outcome, note=OFFLINE_NOTES.get((s.id, prof), "")))
    return out
