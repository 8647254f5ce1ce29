"""What a backend is: the part that makes a planned :class:`Layout` real.

Like containerlab's container ``runtime``: ``deploy`` creates the network a
layout describes, ``destroy`` removes it again, ``inspect`` says which of it
exists. Planning (:mod:`layout`) is the same for every backend; a backend
records each resource in the run state before creating it, so ``destroy``
(and ``tunnelwall cleanup``) works from the run state alone, even after the
creating process was killed. The run state names its backend
(``RunState.backend``); :func:`tunnelwall.topologies.backend_for` finds it.

Mininet with Open vSwitch (:mod:`mininet_backend`) is the one backend today.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from tunnelwall.base.layout import Layout
from tunnelwall.base.runstate import RunState

from .model import Topology


@dataclass(frozen=True)
class ControllerAddress:
    """Where the border switch's OpenFlow controller listens (and what
    Mininet's OVSSwitch.start() reads from a controller object)."""

    name: str
    port: int
    protocol: str = "tcp"
    ip: str = "127.0.0.1"

    def IP(self) -> str:  # noqa: N802 (Mininet's API)
        return self.ip


@dataclass
class NetworkStatus:
    """Which of the resources a run recorded exist now (``Backend.inspect``)."""
    present: dict[str, list[str]] = field(default_factory=dict)    # kind ("netns", "bridges"...) -> names
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not any(self.missing.values())

    @property
    def gone(self) -> bool:
        return not any(self.present.values())


class Backend(abc.ABC):
    """Builds and removes the network of one run (*state*)."""

    name: ClassVar[str]

    def __init__(self, state: RunState):
        self.state = state

    @abc.abstractmethod
    def deploy(self, topo: Topology, layout: Layout, controller: ControllerAddress | None = None,
               fail_mode: str = "secure") -> None:
        """Create the network *layout* (planned from *topo*) describes; the
        layout, with what only deploying learns (container PIDs), is stored
        in the run state. *controller*: where the border switch's OpenFlow
        controller listens; None leaves it a standalone learning switch.
        *fail_mode*: the border switch's while its controller is away,
        ``secure`` (fail closed) or ``standalone`` (fail open)."""

    @abc.abstractmethod
    def destroy(self) -> list[str]:
        """Remove the network resources the run state lists, and nothing
        else; returns what was removed (for the user)."""

    @abc.abstractmethod
    def inspect(self) -> NetworkStatus:
        """Which of the network resources the run state lists exist now."""
