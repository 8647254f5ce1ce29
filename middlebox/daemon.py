"""The live middlebox: the engine on the censor node's port.

Runs inside the middlebox node's namespace (``python -m tunnelwall.middlebox.daemon
--config FILE``). It reads frames from its interface with an AF_PACKET raw
socket, feeds the engine, and for each verdict

* tells the controller (JSON lines on the Unix socket, see
  ``controller.channel``), which installs the flow rules;
* injects what the rule asks for: TCP RSTs to both ends, a forged DNS answer;
* in ``inline`` placement, sends the frame back to the switch unless the
  flow is blocked (the switch forwards what comes from this port); a
  server's SYN/ACK comes as a copy the switch has already sent on, so it
  is only looked at (``packet.plain_synack``). IP
  fragments are steered here in both placements and held until their
  datagram is complete; then all its frames go on, or none if it is blocked;
* re-announces a decided flow's verdict when the flow's packets reach it
  again (the switch's rule for it idled out or was lost), so a verdict
  holds for the flow's whole life whatever Open vSwitch expires.

Past its capacity (a frame waited in the receive queue longer than the
profile's ``flows.max_lag_ms``) the middlebox follows the profile's declared
``overload`` policy: ``open`` forwards frames unexamined, ``closed`` drops
them (inline; a tap censor can only miss them). Frames, shed frames, the
socket's own drops and the worst wait are reported every second and shown
by ``/api/health`` (``middlebox_load``).

A malformed frame is counted and skipped; nothing a packet contains can
stop the loop. Losing the controller does not stop it either: the middlebox
keeps classifying (and, inline, keeps holding blocked flows back, so a
fail-closed border still censors), queues its verdicts, reconnects to the
restarted controller and hands them over, so the verdict log misses nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import select
import socket
import struct
import sys
import time

from tunnelwall.base.policer import Bucket
from tunnelwall.base.rawsock import SOL_PACKET, packet_socket

from . import inject, profiles
from .engine import Engine, collect_less
from .packet import ip_bytes, ip_start, parse_ethernet, plain_synack

try:
    from ._fastpath import receive as _receive      # frames in batches, in C (optional, like the walk)
except ImportError:                                  # pragma: no cover - recvmsg one frame at a time below
    _receive = None

RECONNECT_EVERY = 0.25           # seconds between attempts while the controller is away
PENDING_MAX = 10_000             # verdicts kept for a controller that is away
REANNOUNCE_EVERY = 1.0           # seconds between re-announcements of one flow's verdict
DEFERRED = frozenset({"allow", "log"})   # verdicts with no rule now: the switch's tracker takes the flow
                                         # (flows.offload: conntrack), or a rule after offload_after packets
# Verdicts that only need logging (an allowed flow whose rule is deferred
# or left to the switch's tracker) go to the controller together, at most
# this long after the first of them or this many at once: under many short
# connections each one alone cost the controller a wake-up of its own.
LOG_BATCH_SECONDS = 0.01
LOG_BATCH_MAX = 32
DRAIN_MAX = 64                   # frames read per wake-up before looking at the controller again
RESETS_PER_FLOW = 8              # RST rounds per reset flow after the first (one per offending packet)
LOAD_EVERY = 1.0                 # seconds between load reports to the controller
SO_TIMESTAMPNS = 35              # Linux: the kernel's receive time of each frame (SCM_TIMESTAMPNS alike)
PACKET_STATISTICS = 6            # Linux: frames received and dropped by the socket since the last read


def open_port(iface: str) -> socket.socket:
    # Never read back what we send (re-injected and forged frames).
    return packet_socket(iface)


def connect_controller(path: str, timeout: float = 30.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            return conn
        except OSError:
            conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def warm_up(profile) -> None:
    """Run every code path once before the first real packet, so that the
    first packet of the first flow is not the one that pays for imports and
    caches (in tap placement, a slow verdict is a late verdict)."""
    import os as _os
    from .inject import tcp_segment
    scratch = Engine(profile, seed=0)
    mac, a, b = b"\x02" * 6, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    for payload in (b"\x01\x00\x00\x00" + _os.urandom(144), b"\xc3\x00\x00\x00\x01" + _os.urandom(1200),
                    _os.urandom(300), b"GET / HTTP/1.1\r\n\r\n"):
        frame = tcp_segment(mac, mac, a, b, 1, 2, 0, 0, 0x18, payload)
        scratch.feed(frame, 0.0)
        udp = frame[:23] + b"\x11" + frame[24:]
        scratch.feed(udp, 0.0)


class Middlebox:
    def __init__(self, config: dict):
        self.config = config
        self.profile = profiles.apply_overrides(profiles.load(config["profile"]), config.get("overrides", []))
        warm_up(self.profile)
        self.engine = Engine(self.profile, seed=config.get("seed"))
        self.inline = config["placement"] == "inline"
        # flows.offload: conntrack (fixed for the run, whatever profile is
        # loaded later): frames of flows allowed go back tagged with this VLAN,
        # and the switch's connection tracker lets the rest of the flow by.
        self.bypass_vlan = config.get("bypass_vlan") if config.get("offload") == "conntrack" else None
        self.bypass_tag = b"\x81\x00" + self.bypass_vlan.to_bytes(2, "big") if self.bypass_vlan else b""
        self.port = open_port(config["iface"])
        # Overload: each frame's wait in the receive queue (kernel timestamp
        # to now) says whether the middlebox keeps up. Past flows.max_lag_ms
        # the profile's overload policy decides: open forwards the frame
        # unexamined (inline), closed drops it. Counted and reported.
        self.port.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.load = {"frames": 0, "shed": 0, "kernel_drops": 0, "errors": 0, "max_lag_ms": 0.0, "policed": 0,
                     "tagged": 0, "forged_tags": 0, "copies": 0}
        self.window_lag = 0.0
        self.next_load = time.monotonic() + LOAD_EVERY
        self.poller = select.epoll()
        self.poller.register(self.port.fileno(), select.EPOLLIN)
        self.ctrl: socket.socket | None = None
        self.ctrl_buffer = b""
        self.pending: collections.deque = collections.deque(maxlen=PENDING_MAX)
        self.next_attempt = 0.0
        self.errors = 0
        self.resets_sent: collections.OrderedDict = collections.OrderedDict()   # flow key -> RST rounds (bounded)
        self.batch: list[dict] = []                     # logged-only verdicts not sent yet
        self.batch_due = 0.0
        # Throttled flows' frames until the switch's meter takes them over:
        # (flow key, from the client) -> its bucket (bounded).
        self.buckets: collections.OrderedDict = collections.OrderedDict()
        self._attach(connect_controller(config["socket"]))
        print(f"middlebox: profile {self.profile.name}, {config['placement']} on {config['iface']}", flush=True)

    def _attach(self, conn: socket.socket) -> None:
        self.ctrl, self.ctrl_buffer = conn, b""
        self.poller.register(conn.fileno(), select.EPOLLIN)
        queued = list(self.pending)
        self.pending.clear()
        self.send({"type": "hello", "role": "middlebox", "profile": self.profile.name,
                   "placement": self.config["placement"]})
        for msg in queued:
            self.send(msg)
        if self.ctrl is not None and self.next_attempt:
            print(f"middlebox: controller is back; handed over {len(queued)} queued messages", flush=True)

    def _detach(self) -> None:
        print("middlebox: lost the controller; classifying on and reconnecting", flush=True)
        try:
            self.poller.unregister(self.ctrl.fileno())
        except (OSError, ValueError):
            pass
        self.ctrl.close()
        self.ctrl = None
        self.next_attempt = time.monotonic() + RECONNECT_EVERY

    def _reconnect(self) -> None:
        self.next_attempt = time.monotonic() + RECONNECT_EVERY
        try:
            conn = connect_controller(self.config["socket"], timeout=0)    # one attempt
        except OSError:
            return
        self._attach(conn)

    def send(self, msg: dict, batch: bool = False) -> None:
        """A message to the controller, in order; *batch*: one that only needs
        logging may wait for others (LOG_BATCH_SECONDS)."""
        if batch and self.ctrl is not None:
            if not self.batch:
                self.batch_due = time.monotonic() + LOG_BATCH_SECONDS
            self.batch.append(msg)
            if len(self.batch) >= LOG_BATCH_MAX:
                self.flush()
            return
        self.flush()
        if self.ctrl is None:
            self.pending.append(msg)
            return
        try:
            self.ctrl.sendall((json.dumps(msg, default=str) + "\n").encode())
        except OSError:
            self._detach()
            self.pending.append(msg)

    def flush(self) -> None:
        """The batched verdicts, in one write."""
        if not self.batch:
            return
        msgs, self.batch = self.batch, []
        if self.ctrl is None:
            self.pending.extend(msgs)
            return
        try:
            self.ctrl.sendall("".join(json.dumps(m, default=str) + "\n" for m in msgs).encode())
        except OSError:
            self._detach()
            self.pending.extend(msgs)

    def run(self) -> None:
        port = self.port.fileno()
        while True:
            now = time.monotonic()
            timeout = self.next_load - now
            if self.ctrl is None:
                timeout = min(timeout, self.next_attempt - now)
            if self.batch:
                timeout = min(timeout, self.batch_due - now)
            for fd, _events in self.poller.poll(max(0.0, timeout)):
                if fd == port:
                    self.drain_port()
                elif self.ctrl is not None and not self.on_control():
                    self._detach()
            now = time.monotonic()
            if self.batch and now >= self.batch_due:
                self.flush()
            if now >= self.next_load:
                self.report_load(now)
            if self.ctrl is None and now >= self.next_attempt:
                self._reconnect()

    def drain_port(self) -> None:
        """The frames queued on the port, up to DRAIN_MAX per wake-up: one
        poll per burst rather than per frame (under many short connections
        the frames come in bursts), while control messages and load reports
        still get their turn. Each frame's lag is its wait from the kernel's
        receive time to its turn here."""
        limit = self.profile.flows.max_lag_ms / 1000.0
        for frame, stamp in self.queued():
            if self.waited(stamp) > limit:
                self.shed(frame)
            else:
                self.on_frame(frame)

    def queued(self):
        """(frame, the kernel's receive time or 0.0) of each frame waiting on
        the port, at most DRAIN_MAX: all of them read by one system call with
        the C receive, else one recvmsg per frame, each read when its turn
        comes."""
        if _receive is not None:
            frames = _receive(self.port.fileno(), DRAIN_MAX)
            self.load["frames"] += len(frames)
            yield from frames
            return
        flags = 0                                     # the first: poll said there is one
        for _ in range(DRAIN_MAX):
            try:
                frame, ancillary, _flags, _addr = self.port.recvmsg(65535, 64, flags)
            except BlockingIOError:
                return
            self.load["frames"] += 1
            stamp = 0.0
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack_from("qq", data)
                    stamp = sec + nsec * 1e-9
            yield frame, stamp
            flags = socket.MSG_DONTWAIT

    def waited(self, stamp: float) -> float:
        """Seconds since *stamp* (0.0 without one), kept as the window's worst."""
        lag = max(0.0, time.time() - stamp) if stamp else 0.0
        if lag > self.window_lag:
            self.window_lag = lag
        return lag

    def shed(self, frame: bytes) -> None:
        """A frame past capacity, under the profile's overload policy: open
        forwards it unexamined (inline; in tap the switch already did), closed
        drops it (inline; a tap censor can only miss it)."""
        self.load["shed"] += 1
        if self.inline and self.profile.overload == "open" and not plain_synack(frame):
            self.port.send(frame)

    def report_load(self, now: float) -> None:
        self.next_load = now + LOAD_EVERY
        try:
            _received, dropped = struct.unpack("II", self.port.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.load["kernel_drops"] += dropped    # the counters reset when read
        except OSError:
            pass
        self.load["errors"] = self.errors
        self.load["unparsed"] = self.engine.stats.get("unparsed", 0)   # packets a classifier gave up on (budget.py)
        self.load["max_lag_ms"] = round(max(self.load["max_lag_ms"], self.window_lag * 1000.0), 2)
        if self.ctrl is None:
            return             # never queued: a stale load report must not push out a verdict
        self.send({"type": "load", **self.load, "lag_ms": round(self.window_lag * 1000.0, 2),
                   "policy": self.profile.overload, "max_lag_limit_ms": self.profile.flows.max_lag_ms,
                   "placement": self.config["placement"]})
        self.window_lag = 0.0

    def on_frame(self, frame: bytes) -> None:
        now = time.time()
        fragments = None
        try:
            flow = self.engine.feed(frame, now)
            fragments = self.engine.fragments
            verdicts = self.engine.drain()
            for verdict in verdicts:
                self.on_verdict(verdict, frame, flow)
            if not verdicts and flow is not None and flow.blocking and flow.verdict.action == "reset":
                self.reset_again(flow, frame)
            if (not verdicts and flow is not None and flow.done and flow.verdict.action != "freeze"
                    and flow.client_port and flow.server_port      # only flows the switch can hold a rule for
                    and not self.bypassed(flow)):                  # (or its tracker holds: tagged below)
                if flow.offload_at:
                    if flow.packets >= flow.offload_at:
                        flow.offload_at = 0
                        self.reannounce(flow, now, offload=True)   # long enough to be worth a rule
                elif now - flow.announced >= REANNOUNCE_EVERY:
                    self.reannounce(flow, now)
        except Exception as err:   # noqa: BLE001 - one bad packet must not stop the censor
            self.errors += 1
            print(f"middlebox: error on a {len(frame)}-byte frame: {type(err).__name__}: {err}", flush=True)
            flow = None
        if self.bypass_vlan and self.carries_tag(frame):
            # A host's frame with our tag would have the switch let its flow
            # by uninspected: inspected (above), never passed on.
            self.load["forged_tags"] += 1
            return
        if fragments is not None:
            # The switch sends every fragment here, whatever the placement.
            for piece in fragments if flow is not None and not flow.blocking else ():
                if not (self.bypass_vlan and self.carries_tag(piece)):
                    self.port.send(piece)
            return
        if self.inline and plain_synack(frame):
            # The switch copied it here and sent it on itself (controller/pipeline.py);
            # if it allowed the flow, the flow's next frame carries the tag.
            self.load["copies"] += 1
            return
        if self.inline and not (flow is not None and flow.blocking):
            if flow is not None and flow.done and flow.verdict.action == "throttle" and flow.verdict.rate_kbit \
                    and not self.within_rate(flow, frame, now):
                self.load["policed"] += 1
                return
            self.port.send(self.tagged(frame) if flow is not None and self.bypassed(flow) else frame)
        elif flow is not None and self.bypassed(flow):
            self.port.send(self.tagged(frame))     # tap: the switch marks the connection and drops the copy

    @staticmethod
    def ruleless(action: str, flow) -> bool:
        """A verdict whose flow gets no rule at once: allowed or logged, on a
        flow with ports (the only kind the switch can hold)."""
        return action in DEFERRED and bool(flow.client_port and flow.server_port)

    def bypassed(self, flow) -> bool:
        """Whether the switch's tracker should let the rest of this flow by
        (conntrack offload)."""
        return self.bypass_vlan is not None and flow.done and self.ruleless(flow.verdict.action, flow)

    def carries_tag(self, frame: bytes) -> bool:
        return frame[12:14] == b"\x81\x00" and int.from_bytes(frame[14:16], "big") & 0xFFF == self.bypass_vlan

    def tagged(self, frame: bytes) -> bytes:
        self.load["tagged"] += 1
        return frame[:12] + self.bypass_tag + frame[12:]

    def within_rate(self, flow, frame: bytes, now: float) -> bool:
        """A throttled flow's frame that still reached the middlebox (its
        meter's rule is not on the switch yet) passes only within the rule's
        rate, per direction, as the meter would let it (base.policer)."""
        at, _ethertype = ip_start(frame)                      # a VLAN tag moves the IP header
        src = frame[at + 12:at + 16] if len(flow.client) == 4 else frame[at + 8:at + 24]
        key = (flow.key, src == flow.client)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(flow.verdict.rate_kbit, now)
            if len(self.buckets) > 10_000:
                self.buckets.popitem(last=False)
        return bucket.take(len(frame), now)

    def reset_again(self, flow, frame: bytes) -> None:
        """A packet of a flow already reset reached the censor (tap: the copy of
        the server's answer, racing the first RSTs): reset again with this
        packet's sequence numbers, which the receiver will accept, as on-path
        injectors do for every offending packet. A few per flow at most."""
        sent = self.resets_sent.get(flow.key, 0)
        if sent >= RESETS_PER_FLOW:
            return
        trigger = self.trigger_of(frame)
        if trigger is not None and trigger.frag is None:
            self.resets_sent[flow.key] = sent + 1
            if len(self.resets_sent) > 10_000:
                self.resets_sent.popitem(last=False)
            self.send_resets(flow.verdict, trigger)

    def trigger_of(self, frame: bytes):
        """The packet to answer: a fragmented trigger is the whole datagram it belonged to."""
        return self.engine.reassembled if self.engine.fragments else parse_ethernet(frame)

    def send_resets(self, verdict, trigger) -> None:
        """RST+ACKs to both ends, shaped as the verdict's rule says (count, windows)."""
        shape = verdict.resets or {}
        for forged in inject.tcp_resets(trigger, shape.get("count", 1), shape.get("windows")):
            self.port.send(forged)

    def reannounce(self, flow, now: float, offload: bool = False) -> None:
        """The flow came back to the middlebox after its verdict: its rule on
        the switch is gone (or, with *offload*, was deferred and is due now).
        Send the verdict again (no residual: that block was already set),
        marked so the controller does not log it twice."""
        flow.announced = now
        record = flow.verdict.as_dict()
        record.pop("residual", None)
        self.send({"type": "verdict", "verdict": record, "reannounce": True, "offload": offload})

    def on_verdict(self, verdict, frame: bytes, flow=None) -> None:
        msg = {"type": "verdict", "first_seen": verdict.time - verdict.ms / 1000.0}
        if flow is not None:
            flow.announced = verdict.time
            after = self.profile.flows.offload_after
            if self.ruleless(verdict.action, flow) and (self.bypass_vlan or after):
                # Logged now, no rule now: the switch's tracker takes the flow
                # (tagged frames), or its rule goes on only if the flow goes on:
                # a rule costs the controller and the switch more than passing a
                # short connection's last packets on (benchmarks/connections.py).
                if not self.bypass_vlan:
                    flow.offload_at = flow.packets + after
                msg["install"] = False
        record = verdict.as_dict()
        if verdict.action == "probe" and flow is not None:
            # The prober replays it (Alice et al. 2020).
            record["first_payload"] = flow.first_c2s_payload[:2048].hex()
        msg["verdict"] = record
        self.send(msg, batch=msg.get("install") is False)
        if verdict.action == "allow":
            return
        print(f"middlebox: {verdict.flow} -> {verdict.action} ({verdict.rule}) at packet {verdict.packet_index}",
              flush=True)
        trigger = self.trigger_of(frame)
        if trigger is None:
            return
        if verdict.action == "reset":
            self.send_resets(verdict, trigger)
        elif verdict.action == "forge-dns" and verdict.answer:
            answer = inject.dns_answer(trigger, verdict.answer)
            if answer:
                self.port.send(answer)

    def on_control(self) -> bool:
        try:
            data = self.ctrl.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        self.ctrl_buffer += data
        while b"\n" in self.ctrl_buffer:
            line, self.ctrl_buffer = self.ctrl_buffer.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("type") == "reload":
                self.reload(msg.get("profile", ""))
            elif msg.get("type") == "clear-blocks":
                self.engine.residual.clear()
            elif msg.get("type") == "block-server":
                self.engine.block_server(6 if msg.get("transport", "tcp") == "tcp" else 17, ip_bytes(msg["server"]),
                                         int(msg["port"]), msg.get("seconds"), msg.get("rule", "probe"),
                                         msg.get("action", "drop"), time.time())
        return True

    def reload(self, name: str) -> None:
        try:
            profile = profiles.load(name)
        except Exception as err:   # noqa: BLE001 - report any profile problem to the caller
            self.send({"type": "error", "error": str(err)})
            return
        self.profile = profile
        self.engine = Engine(profile, seed=self.config.get("seed"))
        self.send({"type": "reloaded", "profile": profile.name})
        print(f"middlebox: reloaded profile {profile.name}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    with open(args.config) as fh:
        config = json.load(fh)
    collect_less()                   # this process is the engine's, for its whole life
    try:
        Middlebox(config).run()
    except KeyboardInterrupt:
        return 0
    except OSError as err:
        print(f"middlebox: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
