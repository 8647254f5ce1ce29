"""``tunnelwall graph [TOPOLOGY] [--format mermaid|dot]``: a picture of a topology."""

from __future__ import annotations

from tunnelwall.cli.main import verb


def cmd_graph(args) -> int:
    from tunnelwall import topologies
    from tunnelwall.base.runstate import active_run
    from tunnelwall.topologies import graph
    spec = args.topology
    if spec is None:
        state = active_run()
        spec = state.topology if state else "isp"
    topo = topologies.resolve(spec)
    print(graph.to_dot(topo) if args.format == "dot" else graph.to_mermaid(topo), end="")
    return 0


@verb
def add_graph(sub) -> None:
    p = sub.add_parser("graph", help="draw a topology (Mermaid or Graphviz DOT): nodes, addresses, the censor")
    p.add_argument("topology", nargs="?", help="catalogue name or YAML path (default: the running one, else isp)")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="Mermaid or Graphviz DOT")
    p.set_defaults(func=cmd_graph)
