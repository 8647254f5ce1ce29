"""tunnelwall's OpenFlow 1.3 controller: the censor's hands on the border switch.

One app class with small ``@set_ev_cls`` handlers, in Ryu's style (it runs
on os-ken, the maintained Ryu fork). It

* installs the border pipeline (see :mod:`controller.pipeline`) when the
  switch connects, forwarding from the topology's static MAC table;
* accepts verdicts from the middlebox over a Unix socket (JSON lines; a
  filesystem socket reaches across network namespaces, which a loopback TCP
  port would not) and turns each into flow rules: allow, drop, meter,
  residual 3-tuple block with a hard timeout;
* appends every verdict to the JSON-lines verdict log;
* serves a small REST API on 127.0.0.1 with a per-run token
  (:mod:`controller.rest`).

Configuration comes from the JSON file named by ``TUNNELWALL_CONTROLLER_CONFIG``.
"""

from __future__ import annotations

import collections
import os
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from tunnelwall.base.verdict import LoggedVerdict, ResidualBlock, Verdict

from . import pipeline
from .blocks import BlockBook
from .config import ControllerConfig
from .probing import confirmed_block, probe_record, probe_request
from .verdictlog import VerdictLog
from .verdictlog import read as read_log


RESTORE_VERDICTS_SECONDS = 600.0     # verdicts this recent are handed to a restarted middlebox


class TunnelwallController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = ControllerConfig.read(os.environ["TUNNELWALL_CONTROLLER_CONFIG"])
        self.datapath = None
        self.blocks = BlockBook()                    # residual blocks (controller/blocks.py)
        self.verdicts = collections.deque(maxlen=5000)
        # A restarted controller picks up where the last one stopped: the
        # residual blocks still running are in the verdict log.
        for record in read_log(self.config.verdict_log):
            self.verdicts.append(record)
            self.blocks.remember_logged(record)
        self.verdict_log = VerdictLog(self.config.verdict_log)
        self.next_meter = 1
        self.reinstalled = 0                         # verdicts put back after their rule expired
        self.retracted = 0                           # allow rules deleted for a new connection on their 5-tuple
        self.offloaded = 0                           # allowed flows given their rule once they went on
        self.tracked = self.config.offload == "conntrack"   # allowed flows: the switch's tracker, no rules
        self.generation = 1                          # conntrack offload: the mark of flows allowed under this profile
        self.middlebox_load: dict = {}               # the middlebox's last load report (overload policy)
        self.stalls = 0                              # middleboxes the supervisor's watchdog found stuck
        self.stalled_policy: str | None = None       # open / closed until the restarted middlebox is back
        self.profile = self.config.profile
        self.middlebox = None                        # the channel's connection while it is up
        self.started = time.time()
        self.probes = collections.deque(maxlen=1000)   # probe results
        self.results = collections.deque(maxlen=500)   # verify results posted by the harness
        self.probing: set[tuple] = set()                # servers being probed now
        self.history = collections.deque(maxlen=1000)  # switch/middlebox up/down, reloads (os-ken owns self.events)
        from .channel import MiddleboxChannel
        from .rest import RestApi
        self.channel = MiddleboxChannel(self, self.config.socket)
        self.threads.append(hub.spawn(self.channel.serve))
        self.rest = RestApi(self, self.config.api_port, self.config.api_token)
        self.threads.append(hub.spawn(self.rest.serve))

    # -- switch events ---------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        if dp.id != self.config.dpid:
            self.logger.warning("ignoring switch with dpid %s (expected %s)", dp.id, self.config.dpid)
            return
        self.datapath = dp
        # Our rules from an earlier session go (after an Open vSwitch restart
        # there are none); residual blocks are put back with the time they have left.
        dp.send_msg(pipeline.delete_cookie(dp, pipeline.COOKIE_PIPELINE))
        dp.send_msg(pipeline.delete_cookie(dp, pipeline.COOKIE_VERDICT))
        dp.send_msg(pipeline.delete_cookie(dp, pipeline.COOKIE_RESIDUAL))
        self.install_pipeline()
        now = time.time()
        blocks = self.blocks.live(now)
        for block in blocks:
            dp.send_msg(pipeline.residual_flow(dp, block, block.seconds_left(now)))   # None: for the run
        self.note("switch connected", dpid=dp.id, residual_blocks=len(blocks))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if self.datapath is not None and ev.datapath.id == self.datapath.id:
            self.datapath = None
            self.note("switch disconnected")

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def switch_error(self, ev):
        msg = ev.msg
        self.note("switch error", type=msg.type, code=msg.code)

    # -- enforcement -----------------------------------------------------
    def install_pipeline(self) -> None:
        dp = self.datapath
        if dp is None:
            return
        dp.send_msg(pipeline.delete_cookie(dp, pipeline.COOKIE_PIPELINE))
        up = self.middlebox is not None and self.stalled_policy is None
        for mod in pipeline.base_flows(dp, self.config, middlebox_up=up, generation=self.generation,
                                       fail=self.stalled_policy):
            dp.send_msg(mod)

    def install_verdict(self, verdict: Verdict) -> bool:
        """Put one verdict's rules on the switch; False if none is connected."""
        dp = self.datapath
        if dp is None:
            return False
        meter_ids = None
        if verdict.action == "throttle" and verdict.rate_kbit:
            meter_ids = (self.next_meter, self.next_meter + 1)
            self.next_meter += 2
            for meter_id in meter_ids:
                dp.send_msg(pipeline.meter(dp, meter_id, verdict.rate_kbit))
        for mod in pipeline.verdict_flows(dp, verdict, meter_ids, self.config.rule_idle_timeout):
            dp.send_msg(mod)
        return True

    def reinstall_verdict(self, verdict: Verdict, offload: bool = False) -> None:
        """A decided flow came back to the middlebox: its rule idled out or
        was lost (the verdict holds for the flow's life, so it goes back on),
        or, with *offload*, an allowed flow went on long enough after its
        verdict to be given its rule now."""
        if offload:
            self.offloaded += 1
        else:
            self.reinstalled += 1
        self.install_verdict(verdict)

    def retract_verdict(self, verdict: Verdict, frame: bytes) -> None:
        """A new connection (its SYN is *frame*, held by the middlebox) reuses
        the 5-tuple of an allowed flow whose rules may be on the switch:
        delete them, then send the SYN on, in that order (issue 33)."""
        dp = self.datapath
        if dp is None:
            return
        self.retracted += 1
        for mod in pipeline.retract_flows(dp, verdict):
            dp.send_msg(mod)
        if frame:
            dp.send_msg(pipeline.send_on(dp, self.config, frame))

    def apply_verdict(self, verdict: Verdict, first_seen: float | None, install: bool = True) -> dict:
        """Install the rules for one verdict (unless the middlebox defers an
        allowed flow's rule until it has gone on for a while: it re-announces
        it then), log it, and return the log record."""
        dp = self.datapath
        if install:
            self.install_verdict(verdict)
        now = time.time()
        wire = verdict.as_dict()
        record = {"time": now, "profile": self.profile, **{k: v for k, v in wire.items() if k != "time"},
                  "installed": dp is not None and install}
        if not install:
            # Its rule comes later (rules), or the switch's tracker holds it (conntrack).
            record["offload"] = "conntrack" if self.tracked else "deferred"
        # When the middlebox decided; later than "time" only for verdicts it
        # queued while this controller was away.
        record["decided"] = wire["time"]
        if first_seen:
            record["install_ms"] = round((now - first_seen) * 1000.0, 3)
        self.blocks.add(ResidualBlock.from_verdict(verdict, now))
        if verdict.action == "probe":
            record["probe"] = self.request_probe(verdict)
        self.verdicts.append(record)
        self.verdict_log.write(record)
        return record

    # -- active probing ----------------------------------------------------
    def request_probe(self, verdict: Verdict) -> dict:
        """Ask the prober to probe the verdict's server (once per server at a time)."""
        f = verdict.flow
        key = (f.transport, f.server, f.server_port)
        if f.transport != "tcp":
            return {"requested": False, "why": "only TCP servers are probed"}
        if key in self.probing:
            return {"requested": False, "why": "already being probed"}
        if not self.channel.send("prober", probe_request(verdict, self.config.probe)):
            return {"requested": False, "why": "no prober connected"}
        self.probing.add(key)
        return {"requested": True}

    def probe_result(self, msg: dict) -> None:
        req, now = msg["request"], time.time()
        self.probing.discard(("tcp", req["server"], req["port"]))
        record = probe_record(msg, self.profile, now)
        if msg["confirmed"]:
            block = confirmed_block(req, now)
            self.blocks.add(block)
            if block.action == "reset":         # a switch cannot send RSTs: the middlebox answers
                self.channel.send("middlebox", {"type": "block-server", "transport": "tcp", "server": req["server"],
                                                "port": req["port"], "seconds": req.get("residual"),
                                                "rule": block.rule, "action": "reset"})
            elif self.datapath is not None:
                self.datapath.send_msg(pipeline.residual_flow(self.datapath, block, req.get("residual")))
            record["blocked"] = True
        self.probes.append(record)
        self.verdict_log.write(record)
        self.note("probed", server=req["server"], port=req["port"], fingerprint=msg["fingerprint"],
                  confirmed=msg["confirmed"])

    def active_blocks(self) -> list[dict]:
        return self.blocks.as_api(time.time())

    def clear_blocks(self) -> int:
        """Lift every residual block, on the switch and in the middlebox (for
        repeated trials: each starts with a censor that has no grudges)."""
        count = self.blocks.clear()
        if self.datapath is not None:
            self.datapath.send_msg(pipeline.delete_cookie(self.datapath, pipeline.COOKIE_RESIDUAL))
        self.channel.send("middlebox", {"type": "clear-blocks"})
        self.note("residual blocks cleared", count=count)
        return count

    def middlebox_changed(self, connected) -> None:
        self.middlebox = connected
        if connected:
            self.stalled_policy = None
        self.note("middlebox connected" if connected else
                  f"middlebox disconnected: failing {self.stalled_policy or self.config.fail} until it is back")
        self.install_pipeline()
        if connected:
            self.restore_middlebox()

    def restore_middlebox(self) -> None:
        """What a (re)started middlebox must know of the last one's decisions:
        the residual blocks still running and the recent verdicts that are
        not allow or log (middlebox/restore.py)."""
        now = time.time()
        since = now - RESTORE_VERDICTS_SECONDS
        logged = [lv for lv in map(LoggedVerdict.from_record, self.verdicts) if lv is not None]
        verdicts = [lv.verdict.as_dict() for lv in logged
                    if lv.time > since and lv.verdict.action not in ("allow", "log")]
        blocks = self.blocks.as_api(now)
        if verdicts or blocks:
            self.channel.send("middlebox", {"type": "restore", "blocks": blocks, "verdicts": verdicts})

    def middlebox_stalled(self, stalled_ms: float, pid: int) -> dict:
        """The supervisor's watchdog found the middlebox's loop stuck (it is
        restarting it): the border does what the profile's overload policy
        says at once (open: uninspected; closed: new flows dropped) until
        the new middlebox is back. Counted, logged and noted."""
        policy = self.middlebox_load.get("policy") or self.config.fail
        self.stalls += 1
        self.stalled_policy = policy
        self.install_pipeline()
        record = {"time": time.time(), "type": "watchdog", "profile": self.profile, "stalled_ms": round(stalled_ms, 1),
                  "policy": policy, "pid": pid}
        self.verdict_log.write(record)
        self.note("middlebox stalled", stalled_ms=round(stalled_ms, 1), policy=policy, pid=pid)
        return record

    def reload_profile(self, name: str) -> dict:
        if self.middlebox is None:
            raise RuntimeError("the middlebox is not connected")
        reply = self.channel.request({"type": "reload", "profile": name}, timeout=10)
        if reply.get("type") != "reloaded":
            raise RuntimeError(reply.get("error", "reload failed"))
        self.profile = reply["profile"]
        dp = self.datapath
        if dp is not None:
            # Flows decided under the old profile are inspected afresh: their
            # rules go, and connections the tracker marked no longer match.
            dp.send_msg(pipeline.delete_cookie(dp, pipeline.COOKIE_VERDICT))
        if self.tracked:
            self.generation += 1
            self.install_pipeline()
        self.note("profile reloaded", profile=self.profile)
        return reply

    def note(self, event: str, **detail) -> None:
        self.history.append({"time": time.time(), "event": event, **detail})
        self.logger.info("%s %s", event, detail or "")
