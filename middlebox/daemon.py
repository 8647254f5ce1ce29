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
import sys
import time

from tunnelwall.base import heartbeat
from tunnelwall.base.protocols import TCP, UDP
from tunnelwall.base.rawsock import packet_socket
from tunnelwall.base.verdict import Verdict

from . import profiles
from .config import MiddleboxConfig
from .controllink import ControllerLink
from .enforcer import Enforcer, held_syn, must_retract, ruleless
from .engine import Engine, collect_less
from .flow import Flow
from .packet import ip_bytes, parse_ethernet, plain_synack
from .port import Port, poller_for
from .restore import restore_state

REANNOUNCE_EVERY = 1.0           # seconds between re-announcements of one flow's verdict
LOAD_EVERY = 1.0                 # seconds between load reports to the controller
RELOAD_GRACE = 10.0              # seconds a profile reload may take before the watchdog counts it as a stall
ANNOUNCED, OFFLOAD_AT = 0, 1     # what the daemon keeps per decided flow (see Middlebox.announced)


def open_port(iface: str):
    # Never read back what we send (re-injected and forged frames).
    return packet_socket(iface)


def connect_controller(path: str, timeout: float = 30.0):
    import socket
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
            time.sleep(0.1)           # a retry interval, not synchronisation: the controller may be starting


def warm_up(profile) -> None:
    """Run every code path once before the first real packet, so that the
    first packet of the first flow is not the one that pays for imports and
    caches (in tap placement, a slow verdict is a late verdict)."""
    import os as _os
    from .inject import Endpoints, tcp_segment
    scratch = Engine(profile, seed=0)
    mac, a, b = b"\x02" * 6, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    for payload in (b"\x01\x00\x00\x00" + _os.urandom(144), b"\xc3\x00\x00\x00\x01" + _os.urandom(1200),
                    _os.urandom(300), b"GET / HTTP/1.1\r\n\r\n"):
        frame = tcp_segment(Endpoints(mac, mac, a, b, 1, 2), 0, 0, 0x18, payload)
        scratch.feed(frame, 0.0)
        udp = frame[:23] + b"\x11" + frame[24:]
        scratch.feed(udp, 0.0)


class Middlebox:
    """The port loop: frames from the port through the engine, verdicts to
    the controller (:mod:`.controllink`), and what they ask for done by the
    enforcer (:mod:`.enforcer`)."""

    def __init__(self, config: MiddleboxConfig | dict):
        self.config = config if isinstance(config, MiddleboxConfig) else MiddleboxConfig.from_dict(config)
        self.profile = profiles.apply_overrides(profiles.load(self.config.profile), self.config.overrides)
        warm_up(self.profile)
        # Per decided flow: [when its verdict was last sent, the packet count at
        # which its deferred allow rule is due (0: sent)]; the live daemon's
        # own state, forgotten with the flow.
        self.announced: dict[bytes, list] = {}
        self.rules_offload = self.config.offload == "rules"
        self.retracting: Verdict | None = None    # an allowed flow replaced by a new SYN (rules offload)
        self.engine = self._engine(self.profile)
        self.inline = self.config.inline
        self.port = Port(open_port(self.config.iface), self.inline)
        # flows.offload: conntrack (fixed for the run, whatever profile is
        # loaded later): frames of flows allowed go back tagged.
        self.enforcer = Enforcer(self.port, self.config.tag_vlan)
        self.errors = 0
        self.next_load = time.monotonic() + LOAD_EVERY
        self.poller = poller_for(self.port.fileno())
        self.beat = heartbeat.Heartbeat(self.config.heartbeat) if self.config.heartbeat else None
        self.link = ControllerLink(connect_controller, self.config.socket, self.poller, self.hello)
        print(f"middlebox: profile {self.profile.name}, {self.config.placement} on {self.config.iface}", flush=True)

    def _engine(self, profile) -> Engine:
        self.announced.clear()
        return Engine(profile, seed=self.config.seed, on_evict=self._forget)

    def _forget(self, flow: Flow) -> None:
        state = self.announced.pop(flow.key, None)
        if self.rules_offload and must_retract(flow, state):
            self.retracting = flow.verdict

    def hello(self) -> dict:
        return {"type": "hello", "role": "middlebox", "profile": self.profile.name,
                "placement": self.config.placement}

    # -- the loop ------------------------------------------------------------
    def run(self) -> None:
        port, link, beat = self.port.fileno(), self.link, self.beat
        while True:
            now = time.monotonic()
            if beat is not None:
                beat.beat(now)             # the watchdog's sign of life: at least every heartbeat.EVERY
            timeout = min(self.next_load - now, heartbeat.EVERY)
            if not link.up:
                timeout = min(timeout, link.next_attempt - now)
            if link.batch:
                timeout = min(timeout, link.batch_due - now)
            for fd, _events in self.poller.poll(max(0.0, timeout)):
                if fd == port:
                    self.drain_port()
                elif link.up and not self.on_control():
                    link.detach()
            now = time.monotonic()
            if link.batch and now >= link.batch_due:
                link.flush()
            if now >= self.next_load:
                self.report_load(now)
            if not link.up and now >= link.next_attempt:
                link.reconnect()

    def drain_port(self) -> None:
        """The frames queued on the port, up to DRAIN_MAX per wake-up: one
        poll per burst rather than per frame, while control messages and load
        reports still get their turn."""
        limit = self.profile.flows.max_lag_ms / 1000.0
        if self.beat is not None:
            self.beat.beat()
        for frame, stamp in self.port.queued():
            if self.port.waited(stamp) > limit:
                self.port.shed(frame, self.profile.overload)
            else:
                self.on_frame(frame)

    def report_load(self, now: float) -> None:
        self.next_load = now + LOAD_EVERY
        report = self.port.load_report(self.errors)
        report["unparsed"] = self.engine.stats.get("unparsed", 0)   # packets a classifier gave up on (budget.py)
        if not self.link.up:
            return             # never queued: a stale load report must not push out a verdict
        self.link.send({"type": "load", **report, "policy": self.profile.overload,
                        "max_lag_limit_ms": self.profile.flows.max_lag_ms, "placement": self.config.placement})
        self.port.window_lag = 0.0

    # -- per frame -----------------------------------------------------------
    def on_frame(self, frame: bytes) -> None:
        now = time.time()
        fragments = None
        enforcer = self.enforcer
        try:
            flow = self.engine.feed(frame, now)
            fragments = self.engine.fragments
            verdicts = self.engine.drain()
            for verdict in verdicts:
                self.on_verdict(verdict, frame, flow)
            if not verdicts and flow is not None and flow.blocking and flow.verdict.action == "reset":
                enforcer.reset_again(flow, lambda: self.trigger_of(frame))
            if (not verdicts and flow is not None and flow.done and flow.verdict.action != "freeze"
                    and flow.client_port and flow.server_port      # only flows the switch can hold a rule for
                    and not enforcer.bypassed(flow)):              # (or its tracker holds: tagged below)
                self.maybe_reannounce(flow, now)
        except Exception as err:   # noqa: BLE001 - one bad packet must not stop the censor
            self.errors += 1
            print(f"middlebox: error on a {len(frame)}-byte frame: {type(err).__name__}: {err}", flush=True)
            flow = None
        if self.retracting is not None:
            retracted, self.retracting = self.retracting, None
            if self.link.up:
                # The old flow's allow rules could carry the new connection
                # uninspected: the controller deletes them, then sends this SYN
                # on (issue 33).
                self.link.send({"type": "retract", "verdict": retracted.as_dict(), "frame": frame.hex()})
                return
        self.pass_on(frame, flow, fragments, now)

    def pass_on(self, frame: bytes, flow: Flow | None, fragments, now: float) -> None:
        """Back to the switch, or not: inline, what is not blocked; tap, only
        the tagged copy of an allowed flow's frame."""
        enforcer, port = self.enforcer, self.port
        if enforcer.bypass_vlan and enforcer.carries_tag(frame):
            # A host's frame with our tag would have the switch let its flow
            # by uninspected: inspected (above), never passed on.
            port.load["forged_tags"] += 1
            return
        if fragments is not None:
            # The switch sends every fragment here, whatever the placement.
            for piece in fragments if flow is not None and not flow.blocking else ():
                if not (enforcer.bypass_vlan and enforcer.carries_tag(piece)):
                    port.send(piece)
            return
        if not self.inline and self.rules_offload and held_syn(frame):
            port.send(frame)                      # rules offload: the switch sends SYNs here only (issue 33)
            return
        if self.inline and plain_synack(frame):
            # The switch copied it here and sent it on itself (controller/pipeline.py);
            # if it allowed the flow, the flow's next frame carries the tag.
            port.load["copies"] += 1
            return
        if self.inline and not (flow is not None and flow.blocking):
            if flow is not None and flow.done and flow.verdict.action == "throttle" and flow.verdict.rate_kbit \
                    and not enforcer.within_rate(flow, frame, now):
                port.load["policed"] += 1
                return
            port.send(enforcer.tagged(frame) if flow is not None and enforcer.bypassed(flow) else frame)
        elif flow is not None and enforcer.bypassed(flow):
            port.send(enforcer.tagged(frame))     # tap: the switch marks the connection and drops the copy

    def trigger_of(self, frame: bytes):
        """The packet to answer: a fragmented trigger is the whole datagram it belonged to."""
        return self.engine.reassembled if self.engine.fragments else parse_ethernet(frame)

    # -- verdicts --------------------------------------------------------------
    def maybe_reannounce(self, flow: Flow, now: float) -> None:
        """A decided flow's packet came back: its deferred rule may be due, or
        its rule on the switch is gone (it idled out or was lost)."""
        state = self.announced.setdefault(flow.key, [0.0, 0])
        if state[OFFLOAD_AT]:
            if flow.packets >= state[OFFLOAD_AT]:
                state[OFFLOAD_AT] = 0
                self.reannounce(flow, now, offload=True)   # long enough to be worth a rule
        elif now - state[ANNOUNCED] >= REANNOUNCE_EVERY:
            self.reannounce(flow, now)

    def reannounce(self, flow: Flow, now: float, offload: bool = False) -> None:
        """Send the flow's verdict again (no residual: that block was already
        set), marked so the controller does not log it twice."""
        self.announced.setdefault(flow.key, [0.0, 0])[ANNOUNCED] = now
        record = flow.verdict.as_dict()
        record.pop("residual", None)
        self.link.send({"type": "verdict", "verdict": record, "reannounce": True, "offload": offload})

    def on_verdict(self, verdict, frame: bytes, flow: Flow | None = None) -> None:
        msg = {"type": "verdict", "first_seen": verdict.first_seen}
        if flow is not None:
            state = self.announced.setdefault(flow.key, [0.0, 0])
            state[ANNOUNCED] = verdict.time
            after = self.profile.flows.offload_after
            bypass = self.enforcer.bypass_vlan
            if ruleless(verdict.action, flow) and (bypass or after):
                # Logged now, no rule now: the switch's tracker takes the flow
                # (tagged frames), or its rule goes on only if the flow goes on:
                # a rule costs the controller and the switch more than passing a
                # short connection's last packets on (benchmarks/connections.py).
                if not bypass:
                    state[OFFLOAD_AT] = flow.packets + after
                msg["install"] = False
        msg["verdict"] = verdict.as_dict()
        if verdict.action == "probe" and flow is not None:
            # The prober replays it (Alice et al. 2020).
            msg["verdict"]["first_payload"] = flow.first_c2s_payload[:2048].hex()
        self.link.send(msg, batch=msg.get("install") is False)
        if verdict.action == "allow":
            return
        print(f"middlebox: {verdict.flow} -> {verdict.action} ({verdict.rule}) at packet {verdict.packet_index}",
              flush=True)
        trigger = self.trigger_of(frame)
        if trigger is None:
            return
        if verdict.action == "reset":
            self.enforcer.send_resets(verdict, trigger)
        elif verdict.action == "forge-dns" and verdict.answer:
            self.enforcer.answer_dns(verdict, trigger)

    # -- the controller's requests ---------------------------------------------
    def on_control(self) -> bool:
        msgs = self.link.receive()
        if msgs is None:
            return False
        for msg in msgs:
            kind = msg.get("type")
            if kind == "reload":
                self.reload(msg.get("profile", ""))
            elif kind == "clear-blocks":
                self.engine.residual.clear()
            elif kind == "restore":
                self.restore(msg)
            elif kind == "block-server":
                self.engine.residual.block_server(TCP if msg.get("transport", "tcp") == "tcp" else UDP,
                                                  ip_bytes(msg["server"]), int(msg["port"]), msg.get("seconds"),
                                                  msg.get("rule", "probe"), msg.get("action", "drop"), time.time())
        return True

    def restore(self, msg: dict) -> None:
        """What the last middlebox had decided, from the controller (a watchdog restart)."""
        blocks, verdicts = restore_state(self.engine, msg, time.time())
        print(f"middlebox: restored {blocks} residual blocks and {verdicts} verdicts", flush=True)

    def reload(self, name: str) -> None:
        if self.beat is not None:
            # Loading and compiling a profile is work, not a stuck loop: the
            # watchdog gets a deadline RELOAD_GRACE ahead instead of a beat.
            self.beat.beat(time.monotonic() + RELOAD_GRACE)
        try:
            profile = profiles.load(name)
        except Exception as err:   # noqa: BLE001 - report any profile problem to the caller
            self.link.send({"type": "error", "error": str(err)})
            return
        self.profile = profile
        self.engine = self._engine(profile)
        self.link.send({"type": "reloaded", "profile": profile.name})
        print(f"middlebox: reloaded profile {profile.name}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    config = MiddleboxConfig.read(args.config)
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
