"""Flow records: one per bidirectional 5-tuple, oriented client -> server."""

from __future__ import annotations

from tunnelwall.base.protocols import name_of
from tunnelwall.base.verdict import FlowId

from .packet import ip_text

class Flow:
    """What the engine knows about one flow. The first data payload of
    each direction is kept whole (replayed by the active prober).

    TCP only: ``client_isn`` is the client's initial sequence number (None
    while no SYN was seen), ``streams`` the censor's reassembly of each
    direction (see :mod:`middlebox.stream`), ``fins`` which ends sent a FIN
    (bit 1: client, bit 2: server), ``closed`` set by a RST or both FINs."""

    __slots__ = ("key", "proto", "client", "server", "client_port", "server_port", "first_ts", "last_ts",
                 "packets", "c2s_packets", "s2c_packets", "c2s_data", "s2c_data", "bytes", "states",
                 "detections", "verdict", "done", "blocking", "first_c2s_payload", "first_s2c_payload",
                 "spared", "notes", "client_isn", "streams", "fins", "closed", "evicted", "freeze_at", "s2c_bytes")

    def __init__(self, key: bytes, proto: int, client: bytes, client_port: int, server: bytes,
                 server_port: int, ts: float):
        self.key = key
        self.proto = proto
        self.client, self.client_port = client, client_port
        self.server, self.server_port = server, server_port
        self.first_ts = self.last_ts = ts
        self.packets = self.c2s_packets = self.s2c_packets = 0
        self.c2s_data = self.s2c_data = 0      # packets with payload, per direction
        self.bytes = 0                        # transport payload bytes, whole flow, both directions
        self.states: dict = {}                # classifier -> its per-flow state
        self.detections: list = []
        self.verdict = None
        self.done = False                     # verdict reached: fast path from now on
        self.blocking = False                 # the verdict drops or resets this flow
        self.first_c2s_payload = b""
        self.first_s2c_payload = b""
        self.spared: list[str] = []           # rules that matched but lost their probability draw
        self.notes: dict = {}                 # classifiers' reasons for not matching (e.g. FET exemptions)
        self.client_isn: int | None = None
        self.streams = None
        self.fins = 0
        self.closed = False
        self.evicted = ""                     # why the engine let go of it ("idle", "full"), if it did
        self.freeze_at = 0                    # freeze verdict: drop once the server has sent this many bytes
        self.s2c_bytes = 0                    # server->client payload bytes (counted while freeze_at is set)

    @property
    def id(self) -> FlowId:
        return FlowId(name_of(self.proto), ip_text(self.client), self.client_port,
                      ip_text(self.server), self.server_port)

    @property
    def protocol(self) -> str | None:
        """Best protocol guess: the most confident detection."""
        if not self.detections:
            return None
        return max(self.detections, key=lambda d: d.confidence).protocol
