"""A picture of a topology: Mermaid (renders in GitHub, GitLab and most
Markdown viewers) or Graphviz DOT. Pure functions of the model: nodes with
their role and addresses, links with their bandwidth, and where the censor
sits (the border switch it controls, its middlebox and prober). A link's
router hops (``hops: N``) are drawn as one box saying how many routers the
chain has and what its last router took over, not as N boxes in a row."""

from __future__ import annotations

from .model import Role, Topology


def _label(topo: Topology, name: str) -> list[str]:
    node = topo.nodes[name]
    lines = [name, node.role.value]
    lines += [str(a) for a in node.addresses()] + [str(a) for a in node.interfaces6.values()]
    site = topo.censor
    if site and name == site.switch:
        lines.append(f"censor: {site.profile}, {site.placement}")
    return lines


def _chain_id(chain) -> str:
    return f"{chain.routers[0]}_chain"


def _chain_label(topo: Topology, chain) -> list[str]:
    last = topo.nodes[chain.routers[-1]]
    names = chain.routers[0] if chain.count == 1 else f"{chain.routers[0]} .. {chain.routers[-1]}"
    return [f"{chain.count} router hop{'s' if chain.count > 1 else ''}", names,
            *(str(last.interfaces[i]) for i in ("eth1",) if last.interfaces.get(i)),
            *(str(last.interfaces6[i]) for i in ("eth1",) if i in last.interfaces6)]


def _drawn(topo: Topology) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The nodes and links to draw: a chain's routers and the links between
    them become one node, linked to the chain's two ends."""
    in_chain = {r: c for c in topo.chains for r in c.routers}
    names = [n for n in topo.nodes if n not in in_chain]
    edges = []
    for link in topo.links:
        a, b = link.a.node, link.b.node
        if a in in_chain and b in in_chain:
            continue
        a = _chain_id(in_chain[a]) if a in in_chain else a
        b = _chain_id(in_chain[b]) if b in in_chain else b
        edges.append((a, b, link_label(link)))
    return names, edges


def link_label(link) -> str:
    parts = [f"{link.bandwidth_mbit:g} Mbit/s"] if link.bandwidth_mbit else []
    c = link.conditions
    if c is not None:
        if c.delay_ms:
            parts.append(f"{c.delay_ms:g} ms" + (f" ±{c.jitter_ms:g}" if c.jitter_ms else ""))
        if c.loss:
            parts.append(f"{c.loss:.1%} loss")
        if c.loss_burst:
            parts.append("burst loss")
    return ", ".join(parts)


def to_mermaid(topo: Topology) -> str:
    out = ["flowchart LR"]
    censor_nodes = set()
    if topo.censor:
        censor_nodes = {topo.censor.switch, topo.censor.middlebox} | ({topo.censor.prober} if topo.censor.prober else set())
    names, edges = _drawn(topo)
    for name in names:
        node = topo.nodes[name]
        text = "<br/>".join(_label(topo, name))
        shape = ("([", "])") if node.role in (Role.SWITCH, Role.BORDER_SWITCH) else ("[", "]")
        out.append(f'  {name}{shape[0]}"{text}"{shape[1]}')
    for chain in topo.chains:
        out.append(f'  {_chain_id(chain)}[["{"<br/>".join(_chain_label(topo, chain))}"]]')
    for a, b, label in edges:
        out.append(f"  {a} ---" + (f"|{label}| " if label else " ") + b)
    if censor_nodes:
        out.append("  classDef censor fill:#fdd,stroke:#c00")
        out.append(f"  class {','.join(sorted(censor_nodes))} censor")
    return "\n".join(out) + "\n"


def to_dot(topo: Topology) -> str:
    out = [f'graph "{topo.name}" {{', "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    censor_nodes = set()
    if topo.censor:
        censor_nodes = {topo.censor.switch, topo.censor.middlebox} | ({topo.censor.prober} if topo.censor.prober else set())
    names, edges = _drawn(topo)
    for name in names:
        node = topo.nodes[name]
        text = "\\n".join(_label(topo, name))
        attrs = [f'label="{text}"']
        if node.role in (Role.SWITCH, Role.BORDER_SWITCH):
            attrs.append("shape=ellipse")
        if name in censor_nodes:
            attrs.append('color="#cc0000", style=filled, fillcolor="#ffdddd"')
        out.append(f'  "{name}" [{", ".join(attrs)}];')
    for chain in topo.chains:
        text = "\\n".join(_chain_label(topo, chain))
        out.append(f'  "{_chain_id(chain)}" [label="{text}", shape=box3d];')
    for a, b, label in edges:
        out.append(f'  "{a}" -- "{b}"' + (f' [label="{label}"]' if label else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"
