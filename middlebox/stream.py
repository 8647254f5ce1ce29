"""TCP as the censor sees it: reassembly of each direction's first bytes,
and the censor's connection-state model.

Reassembly (``Stream``)
    The GFW reassembles TCP segments before matching (GFWeb, Hoang et al.,
    USENIX Security 2024); Russia's TSPU does too since 2026. A censor that
    matched single packets would miss a ClientHello split before or inside
    its SNI. ``Stream`` delivers the first ``max_bytes`` of a direction in
    sequence order: out-of-order segments wait (at most ``max_segments`` of
    them), retransmissions of bytes already delivered are ignored (the
    censor has already acted on the first copy), and for overlapping
    segments that are still waiting, ``overlap`` decides which copy wins
    (``first``: the one that arrived first; ``last``: the newer one). Which
    one the GFW prefers for TCP is not settled in print (Khattak et al.,
    FOCI 2013, saw it differ by case); ``first`` is our default and a
    profile parameter.

The censor's state machine (``TcpModel``), per profile
    Measured for the GFW by Wang et al., "Your State is Not Mine" (IMC
    2017, sections 4-5) and Bock et al., Geneva (CCS 2019, section 5 and its
    censor models):

    * the client is the sender of the SYN, never "whoever spoke first": a
      SYN/ACK sent first by the client does not turn the connection round
      (the "TCB turnaround" strategy worked against the GFW about 3 % of the
      time in Geneva's measurements);
    * ``require_syn``: the censor keeps state only for connections whose
      handshake it saw; data of a connection it has no state for is not
      inspected (this is why tearing its state down evades it);
    * ``rst`` / ``fin``: what a RST, RST+ACK or FIN from either end does to the
      censor's state: ``teardown`` (forget the connection; the GFW, which is
      why insertion RSTs and FINs with a bad checksum or a low TTL get
      80-96 % of requests through in Geneva's measurements), ``resync``
      (take the next data packet's sequence number as the new base) or
      ``ignore``;
    * ``second_syn``: a further SYN from the client re-bases the stream on
      its sequence number (``resync``, the GFW's "re-synchronisation state",
      Wang et al. section 5.1) or is ``ignore``d; a SYN/ACK whose ack does
      not match the client's SYN also puts it in re-synchronisation;
    * ``check_checksum``, ``check_ack``, ``check_md5``: whether a segment with
      a wrong checksum, an ack outside the window, or an MD5 signature
      option is discarded before it reaches the state machine. The GFW does
      none of these (Wang et al. section 4; Geneva's insertion packets), so
      they default to off; a receiving host does all three.
    * ``syn_payload``: data on a SYN is ``ignore``d (Linux does not deliver it
      without TCP Fast Open, and neither does the GFW's reassembly) or read
      as ``data``.

    * a RST from the server before its SYN/ACK counts only if it
      acknowledges the client's SYN (``stray_reset``): in that state a host
      discards any other RST (RFC 793, SYN-SENT), and so did the GFW: in
      Geneva's fake-SYN/ACK strategy the server's RST answering the client's
      SYN/ACK reaches the censor after the real SYN, and the request was
      still censored 97 % of the time (Geneva's strategy 23, 3 %).

    TTL is never checked: the censor sits before the server, so a packet
    with a TTL just big enough reaches it but not the server. That is a
    property of the path, not of the model (topologies put hops behind the
    border so it can happen).
"""

from __future__ import annotations

from dataclasses import dataclass

from .budget import spend

SEQ_MOD = 1 << 32
HALF = 1 << 31


@dataclass(frozen=True)
class TcpModel:
    reassemble: bool = True
    max_bytes: int = 16384          # bytes per direction the censor reassembles
    max_segments: int = 32          # out-of-order segments it holds per direction
    overlap: str = "first"          # first | last
    require_syn: bool = True
    rst: str = "teardown"           # teardown | resync | ignore
    fin: str = "teardown"
    second_syn: str = "resync"      # resync | ignore
    check_checksum: bool = False
    check_ack: bool = False
    check_md5: bool = False
    syn_payload: str = "ignore"     # ignore | data

    CHOICES = {"overlap": ("first", "last"), "rst": ("teardown", "resync", "ignore"),
               "fin": ("teardown", "resync", "ignore"), "second_syn": ("resync", "ignore"),
               "syn_payload": ("ignore", "data")}


class Stream:
    """The in-order bytes of one direction of a TCP connection."""

    __slots__ = ("next", "data", "waiting", "limit", "max_segments", "last_wins", "resync")

    def __init__(self, limit: int, max_segments: int, last_wins: bool = False):
        self.next: int | None = None        # sequence number of the next byte expected
        self.data = b""                     # what was delivered in order (at most *limit* bytes)
        self.waiting: dict[int, bytes] = {}  # out-of-order segments by sequence number
        self.limit, self.max_segments, self.last_wins = limit, max_segments, last_wins
        self.resync = False                 # take the next segment's sequence number as the base

    @property
    def full(self) -> bool:
        return len(self.data) >= self.limit

    def start(self, next_seq: int) -> None:
        """(Re)base the stream: the next byte expected is *next_seq*."""
        self.next = next_seq % SEQ_MOD
        self.waiting.clear()
        self.resync = False

    def add(self, seq: int, payload: bytes) -> int:
        """Add one segment; returns how many bytes it (and segments that were
        waiting for it) added to ``data``."""
        if not payload or self.full:
            return 0
        if self.next is None or self.resync:
            self.start(seq)
        before = len(self.data)
        rel = (seq - self.next) % SEQ_MOD
        if rel >= HALF:                           # starts before what we expect: trim the old part
            old = SEQ_MOD - rel
            if old >= len(payload):
                return 0                          # a retransmission of bytes already delivered
            payload, rel = payload[old:], 0
        if rel == 0:
            self._deliver(payload)
            self._drain()
        elif rel < self.limit - len(self.data):
            key = (self.next + rel) % SEQ_MOD
            if key in self.waiting and not self.last_wins:
                return 0
            if key not in self.waiting and len(self.waiting) >= self.max_segments:
                return 0
            self.waiting[key] = payload
        return len(self.data) - before

    def _deliver(self, payload: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += payload[:room]
        self.next = (self.next + len(payload)) % SEQ_MOD

    def _distance(self, seq: int) -> int:
        """Signed distance of *seq* from the next byte expected."""
        d = (seq - self.next) % SEQ_MOD
        return d - SEQ_MOD if d >= HALF else d

    def _drain(self) -> None:
        # Each pass pops one waiting segment or returns: at most max_segments passes.
        while self.waiting and not self.full:
            spend(1, "tcp reassembly")
            progressed = False
            for seq in sorted(self.waiting, key=self._distance):
                rel = (seq - self.next) % SEQ_MOD
                if rel >= HALF:                   # now (partly) behind us
                    payload = self.waiting.pop(seq)
                    old = SEQ_MOD - rel
                    if old < len(payload):
                        self._deliver(payload[old:])
                        progressed = True
                    break
                if rel == 0:
                    self._deliver(self.waiting.pop(seq))
                    progressed = True
                break
            if not progressed:
                return


def segment_accepted(model: TcpModel, streams, pkt, direction: int) -> bool:
    """Whether the censor's state machine takes this segment at all: a
    censor that checks MD5 options, checksums or acknowledgement numbers
    ignores segments that fail (Bock et al. 2019: insertion packets with a
    bad checksum or an ACK of unsent bytes get through a censor that does not)."""
    from .packet import ACK, TCP_OPT_MD5, l4_checksum_ok
    if model.check_md5 and TCP_OPT_MD5 in pkt.tcp_option_kinds():
        return False
    if model.check_checksum and not l4_checksum_ok(pkt):
        return False
    if model.check_ack and pkt.flags & ACK:
        other = streams[1 - direction]
        if other.next is not None and 0 < (pkt.ack - other.next) % SEQ_MOD < HALF:
            return False                             # acknowledges bytes never sent
    return True


def stray_reset(flow, pkt, direction: int) -> bool:
    """Whether *pkt*, a RST, came from the server before its SYN/ACK without
    acknowledging the client's SYN: not acceptable to the client (RFC 793,
    SYN-SENT), so it neither closes the connection nor tears the censor's
    state down (see the module's docstring)."""
    from .packet import ACK
    from .classifiers.base import S2C
    if direction != S2C or flow.client_isn is None or flow.streams is None or flow.streams[S2C].next is not None:
        return False
    return not (pkt.flags & ACK and pkt.ack == (flow.client_isn + 1) % SEQ_MOD)
