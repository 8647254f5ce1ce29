"""IP fragment reassembly (IPv4 and IPv6) before any classifier sees a packet.

Without it a fragmented WireGuard initiation or ClientHello is invisible:
the first fragment has no complete payload and the later ones no
transport header. A censor that reassembles is the stronger adversary, so
tunnelwall's censor always does, within bounds:

* a datagram waits at most ``timeout`` seconds for its missing pieces
  (30 s, the Linux default ``ipfrag_time``); then it is dropped;
* at most ``max_datagrams`` incomplete datagrams are held at once, each at
  most ``max_bytes`` long and in at most ``max_fragments`` pieces; past
  that, new fragments are dropped and counted;
* overlapping fragments reject the whole datagram (and its later
  fragments until the timeout). RFC 5722 requires this for IPv6; for IPv4
  it is our choice, because overlaps exist only to show the censor and the
  receiver different bytes (Ptacek and Newsham, 1998).

The frames that make up a datagram are handed back with it, so the inline
middlebox can forward them as they came (or drop them all if the flow is
blocked): what reaches the server is the client's own fragments.
"""

from __future__ import annotations

from collections import deque

from .packet import Packet, parse_l4

TIMEOUT = 30.0
MAX_DATAGRAMS = 4096
MAX_BYTES = 65535
MAX_FRAGMENTS = 64


class _Datagram:
    __slots__ = ("pieces", "frames", "total", "first", "deadline", "rejected")

    def __init__(self, deadline: float):
        self.pieces: list[tuple[int, bytes]] = []
        self.frames: list[bytes] = []
        self.total: int | None = None      # known once the last fragment (MF clear) arrived
        self.first: Packet | None = None   # the offset-0 fragment: addresses, MACs, tags
        self.deadline = deadline
        self.rejected = False


class Defragmenter:
    def __init__(self, timeout: float = TIMEOUT, max_datagrams: int = MAX_DATAGRAMS, max_bytes: int = MAX_BYTES,
                 max_fragments: int = MAX_FRAGMENTS):
        self.timeout, self.max_datagrams = timeout, max_datagrams
        self.max_bytes, self.max_fragments = max_bytes, max_fragments
        self.pending: dict[tuple, _Datagram] = {}
        self.expiry: deque[tuple[float, tuple]] = deque()
        self.stats = {"fragments": 0, "reassembled": 0, "overlapping": 0, "expired": 0, "over_limit": 0}

    def add(self, frag: Packet, ts: float) -> tuple[Packet | None, list[bytes]]:
        """Add one fragment. Returns (the whole packet, its frames) once the
        datagram is complete, else (None, [])."""
        self.stats["fragments"] += 1
        self._expire(ts)
        ident, offset, more = frag.frag
        key = (frag.src, frag.dst, frag.proto, ident)
        dgram = self.pending.get(key)
        if dgram is None:
            if len(self.pending) >= self.max_datagrams:
                self.stats["over_limit"] += 1
                return None, []
            dgram = self.pending[key] = _Datagram(ts + self.timeout)
            self.expiry.append((dgram.deadline, key))
        if dgram.rejected:
            return None, []
        end = offset + len(frag.payload)
        if end > self.max_bytes or len(dgram.pieces) >= self.max_fragments or (more and len(frag.payload) % 8):
            return self._reject(dgram, "over_limit")
        if not more:
            if dgram.total is not None and dgram.total != end:
                return self._reject(dgram, "overlapping")
            dgram.total = end
        for start, data in dgram.pieces:
            if offset < start + len(data) and start < end:
                return self._reject(dgram, "overlapping")
        dgram.pieces.append((offset, frag.payload))
        dgram.frames.append(frag.frame)
        if offset == 0:
            dgram.first = frag
        if dgram.total is None or dgram.first is None or sum(len(d) for _, d in dgram.pieces) != dgram.total:
            return None, []
        del self.pending[key]
        data = b"".join(d for _, d in sorted(dgram.pieces))
        first = dgram.first
        whole = parse_l4(first.src, first.dst, first.proto, data, 0, len(data), ident, first.ttl)
        if whole is None:
            return None, []
        whole.eth_src, whole.eth_dst, whole.vlan = first.eth_src, first.eth_dst, first.vlan
        whole.l4_offset = whole.l4_end = 0      # no frame of its own: checksums are not re-read
        self.stats["reassembled"] += 1
        return whole, dgram.frames

    def _reject(self, dgram: _Datagram, why: str) -> tuple[None, list]:
        self.stats[why] += 1
        dgram.rejected = True
        dgram.pieces, dgram.frames = [], []
        return None, []

    def _expire(self, now: float) -> None:
        while self.expiry and self.expiry[0][0] <= now:      # pops one entry per pass
            deadline, key = self.expiry.popleft()
            dgram = self.pending.get(key)
            if dgram is not None and dgram.deadline == deadline:
                del self.pending[key]
                if not dgram.rejected:
                    self.stats["expired"] += 1
