"""What a restarted middlebox gets back from the controller.

The supervisor's watchdog restarts a middlebox whose loop stopped making
progress; the controller keeps the running residual blocks and the recent
verdicts and hands them to the new one (``{"type": "restore", ...}``), so
the restart lets nothing through that the censor had blocked: a frozen
flow (TSPU 2025) is counted here, not on the switch, and a server blocked
with RSTs after probing is answered from here.
"""

from __future__ import annotations

import math

from tunnelwall.base.protocols import number_of
from tunnelwall.base.verdict import ANY_CLIENT, ResidualBlock, Verdict

from .classifiers.base import C2S, S2C
from .engine import Engine
from .flow import Flow
from .packet import ip_bytes
from .profiles import Match, Rule


def restore_block(engine: Engine, block: ResidualBlock, now: float) -> None:
    """A residual block the controller kept, back in the engine's table."""
    proto, server = number_of(block.transport) or 0, ip_bytes(block.server)
    if block.client == ANY_CLIENT:
        seconds = None if block.until == math.inf else block.until - now
        engine.residual.block_server(proto, server, block.server_port, seconds, block.rule or "", block.action, now)
    else:
        engine.residual.block_three_tuple(proto, ip_bytes(block.client), server, block.server_port, block.until,
                                          Rule(block.rule or "", Match(), "drop"))


def restore_verdict(engine: Engine, verdict: Verdict, now: float) -> bool:
    """A decided flow the controller kept, back in the flow table, decided,
    so its next packets take the fast path under the same verdict (a freeze
    counts the server's bytes afresh: the count is the old process's).
    Allowed and logged flows are not restored: without their handshake the
    new engine leaves them uninspected, which is what they had. Returns
    whether the flow was restored."""
    f = verdict.flow
    proto = number_of(f.transport)
    if verdict.action in ("allow", "log") or proto is None or not f.has_ports:
        return False
    client, server = ip_bytes(f.client), ip_bytes(f.server)
    key = bytes((proto,)) + client + server + f.client_port.to_bytes(2, "big") + f.server_port.to_bytes(2, "big")
    if key in engine.flows:
        return False
    flow = Flow(key, proto, client, f.client_port, server, f.server_port, now)
    engine.table.add(flow, now, C2S, S2C)
    flow.verdict, flow.blocking, flow.done = verdict, verdict.blocks, True
    if verdict.action == "freeze":
        flow.freeze_at = verdict.after_bytes or 0
    return True


def restore_state(engine: Engine, msg: dict, now: float) -> tuple[int, int]:
    """The controller's ``restore`` message into *engine*: running residual
    blocks (as the API gives them, with the seconds they have left) and
    recent verdicts; returns (blocks, verdicts restored)."""
    blocks = msg.get("blocks", [])
    for record in blocks:
        left = record.get("seconds_left")
        block = ResidualBlock.from_api({**record, "until": None if left is None else now + left})
        restore_block(engine, block, now)
    restored = sum(restore_verdict(engine, Verdict.from_dict(v), now) for v in msg.get("verdicts", []))
    return len(blocks), restored
