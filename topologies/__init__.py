"""Topologies: the YAML catalogue, its loader (parser -> model), the
planning of a run's layout (:mod:`layout`) and the backends that build it
(:mod:`backend`).

``resolve(spec)`` is the registry: a catalogue name (``isp``), a path to a
YAML file, or a generated shape (``star:50``); ``backend_for(state)`` gives
the backend that builds (or built) a run's network.
"""

from __future__ import annotations

from pathlib import Path

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.runstate import RunState

from .model import Role, Topology

CATALOGUE_DIR = Path(__file__).resolve().parent
DEFAULT = "isp"


def catalogue() -> dict[str, Path]:
    """Catalogue name -> YAML file."""
    return {p.stem: p for p in sorted(CATALOGUE_DIR.glob("*.yaml"))}


def resolve(spec: str) -> Topology:
    from . import generate, loader

    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return loader.load(path)
    if spec in catalogue():
        return loader.load(catalogue()[spec])
    if spec.startswith("star:"):
        count = spec.split(":", 1)[1].strip()
        if not count.isdigit():
            raise TunnelwallError(f"topology '{spec}': star:N takes a whole number of clients, e.g. star:50")
        try:
            return generate.star(int(count))
        except ValueError as err:
            raise TunnelwallError(f"topology '{spec}': {err}") from None
    raise TunnelwallError(
        f"unknown topology '{spec}' (catalogue: {', '.join(catalogue())}; or a path to a .yaml file; or star:N)")


BACKENDS = ("mininet",)


def backend_for(state: RunState):
    """The :class:`backend.Backend` of the run *state* (``state.backend``)."""
    if state.backend == "mininet":
        from .mininet_backend import MininetBackend
        return MininetBackend(state)
    raise TunnelwallError(f"run {state.run_id}: unknown backend '{state.backend}' (known: {', '.join(BACKENDS)})")


__all__ = ["Role", "Topology", "catalogue", "resolve", "backend_for", "DEFAULT"]
