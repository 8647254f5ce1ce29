"""A picture of a topology: Mermaid (renders in GitHub, GitLab and most
Markdown viewers) or Graphviz DOT. Pure functions of the model: nodes with
their role and addresses, links with their bandwidth, and where the censor
sits (the border switch it controls, its middlebox and prober)."""

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
    for name, node in topo.nodes.items():
        text = "<br/>".join(_label(topo, name))
        shape = ("([", "])") if node.role in (Role.SWITCH, Role.BORDER_SWITCH) else ("[", "]")
        out.append(f'  {name}{shape[0]}"{text}"{shape[1]}')
    for link in topo.links:
        label = link_label(link)
        out.append(f"  {link.a.node} ---" + (f"|{label}| " if label else " ") + link.b.node)
    if censor_nodes:
        out.append("  classDef censor fill:#fdd,stroke:#c00")
        out.append(f"  class {','.join(sorted(censor_nodes))} censor")
    return "\n".join(out) + "\n"


def to_dot(topo: Topology) -> str:
    out = [f'graph "{topo.name}" {{', "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    censor_nodes = set()
    if topo.censor:
        censor_nodes = {topo.censor.switch, topo.censor.middlebox} | ({topo.censor.prober} if topo.censor.prober else set())
    for name, node in topo.nodes.items():
        text = "\\n".join(_label(topo, name))
        attrs = [f'label="{text}"']
        if node.role in (Role.SWITCH, Role.BORDER_SWITCH):
            attrs.append("shape=ellipse")
        if name in censor_nodes:
            attrs.append('color="#cc0000", style=filled, fillcolor="#ffdddd"')
        out.append(f'  "{name}" [{", ".join(attrs)}];')
    for link in topo.links:
        label = link_label(link)
        out.append(f'  "{link.a.node}" -- "{link.b.node}"' + (f' [label="{label}"]' if label else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"
