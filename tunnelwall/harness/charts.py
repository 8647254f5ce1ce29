"""Charts of a verify run for the HTML report, drawn with matplotlib.

Why matplotlib: it is the well-kept plotting library Debian ships
(python3-matplotlib), it draws error bars and distributions directly, and
its SVG output is self-contained (text as paths, no fonts, scripts or
links), so the report reads offline and nothing is fetched. Each chart is
returned as an inline ``<svg>`` element.

* block rate per tool and profile, with the 95 % Wilson interval as an
  error bar (one run is an interval of 0-79 % or 21-100 %: honest about
  how little one run says);
* when the censor caught a tool: the packet and milliseconds into the flow,
  one dot per trial;
* throughput of the runs that got through (median, min-max range).

Without matplotlib the report says so in place of the charts; nothing else
depends on it.
"""

from __future__ import annotations

import io
import re

COLOURS = {"PASSED": "#2e7d32", "BLOCKED": "#c62828", "DEGRADED": "#ef6c00", "ERROR": "#6a1b9a"}
PROFILE_COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#455a64"]


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "path", "font.size": 9, "svg.hashsalt": "tunnelwall"})
    import matplotlib.pyplot as plt
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]              # inline: no XML prolog or DOCTYPE


def _grid(summary: list[dict]) -> tuple[list[str], list[str]]:
    tools, profiles = [], []
    for s in summary:
        if s["tool"] not in tools:
            tools.append(s["tool"])
        if s["profile"] not in profiles:
            profiles.append(s["profile"])
    return tools, profiles


def block_rates(summary: list[dict]) -> str:
    """Grouped horizontal bars: block rate per tool, one bar per profile,
    with the 95 % interval as an error bar."""
    plt = _pyplot()
    tools, profiles = _grid(summary)
    by = {(s["tool"], s["profile"]): s for s in summary}
    height = max(2.0, 0.28 * len(tools) * max(1, len(profiles)) + 1.0)
    fig, ax = plt.subplots(figsize=(7.5, height), layout="constrained")
    bar = 0.8 / max(1, len(profiles))
    for j, profile in enumerate(profiles):
        ys, rates, lo, hi = [], [], [], []
        for i, tool in enumerate(tools):
            s = by.get((tool, profile))
            if s is None or s["block_rate"] is None:
                continue
            ys.append(i + (j - (len(profiles) - 1) / 2) * bar)
            rates.append(s["block_rate"] * 100)
            lo.append(s["block_rate"] * 100 - s["ci95"][0] * 100)
            hi.append(s["ci95"][1] * 100 - s["block_rate"] * 100)
        ax.barh(ys, rates, height=bar * 0.9, color=PROFILE_COLOURS[j % len(PROFILE_COLOURS)], label=profile,
                xerr=[lo, hi], error_kw={"ecolor": "#333", "capsize": 2, "linewidth": 0.8})
    ax.set_yticks(range(len(tools)), labels=tools)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("connections blocked (%), with the 95 % interval")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Block rate per tool and profile")
    return _svg(fig)


def outcome_grid(results) -> str:
    """One run per cell: the outcome of each tool (rows) under each profile
    (columns) as coloured cells (a rate of one run would say little)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    tools, profiles = [], []
    for r in results:
        if r.tool not in tools:
            tools.append(r.tool)
        if r.profile not in profiles:
            profiles.append(r.profile)
    order = list(COLOURS)
    grid = [[float("nan")] * len(profiles) for _ in tools]
    for r in results:
        grid[tools.index(r.tool)][profiles.index(r.profile)] = order.index(r.outcome)
    fig, ax = plt.subplots(figsize=(1.0 + 0.95 * len(profiles), 0.8 + 0.28 * len(tools)), layout="constrained")
    ax.imshow(grid, cmap=ListedColormap([COLOURS[o] for o in order]), vmin=0, vmax=len(order) - 1, aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:                            # not NaN
                ax.text(j, i, order[int(v)][0], ha="center", va="center", color="white", fontsize=7)
    ax.set_xticks(range(len(profiles)), labels=profiles, rotation=35, ha="right")
    ax.set_yticks(range(len(tools)), labels=tools)
    ax.set_title("Outcome per tool and profile (P passed, B blocked, D degraded, E error)")
    return _svg(fig)


def detection(results) -> str:
    """Packet and time into the flow at which a blocking verdict fell, one
    dot per detected run."""
    hits = [r for r in results if r.detected and r.packets_to_detection]
    if not hits:
        return ""
    plt = _pyplot()
    labels = []
    for r in hits:
        label = f"{r.profile} / {r.tool}"
        if label not in labels:
            labels.append(label)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, max(1.6, 0.3 * len(labels) + 1.0)), sharey=True,
                                   layout="constrained")
    for r in hits:
        y = labels.index(f"{r.profile} / {r.tool}")
        colour = COLOURS.get(r.outcome, "#333")
        ax1.plot(r.packets_to_detection, y, "o", color=colour, alpha=0.6, markersize=4)
        ax2.plot(max(r.ms_to_detection or 0.0, 0.01), y, "o", color=colour, alpha=0.6, markersize=4)
    ax1.set_yticks(range(len(labels)), labels=labels)
    ax1.invert_yaxis()
    ax1.set_xlabel("packet of the flow")
    ax2.set_xlabel("milliseconds into the flow (log)")
    ax2.set_xscale("log")
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("When the censor decided (red: blocked; green: logged only)")
    return _svg(fig)


def throughput(results) -> str:
    """Median Mbit/s of the runs that got through, with their range."""
    groups: dict[str, list[float]] = {}
    for r in results:
        if r.outcome in ("PASSED", "DEGRADED") and r.mbit_s:
            groups.setdefault(f"{r.profile} / {r.tool}", []).append(r.mbit_s)
    if not groups:
        return ""
    import statistics
    plt = _pyplot()
    labels = list(groups)
    med = [statistics.median(groups[k]) for k in labels]
    lo = [m - min(groups[k]) for m, k in zip(med, labels)]
    hi = [max(groups[k]) - m for m, k in zip(med, labels)]
    fig, ax = plt.subplots(figsize=(7.5, max(1.6, 0.25 * len(labels) + 1.0)), layout="constrained")
    ax.barh(range(len(labels)), med, xerr=[lo, hi], color="#1565c0",
            error_kw={"ecolor": "#333", "capsize": 2, "linewidth": 0.8})
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.invert_yaxis()
    ax.set_xlabel("Mbit/s through the tool (median; bar: min-max)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Throughput of the runs that got through")
    return _svg(fig)


def text_bars(summary: list[dict], width: int = 30) -> str:
    """Block rates as text, for terminals and CI logs: ``#`` up to the rate,
    ``-`` over the rest of the 95 % interval, e.g.
    ``gfw-2022  shadowsocks  [########---.................]  28.5% (22.7%-35.1%)``."""
    lines = []
    tool_w = max([len(s["tool"]) for s in summary] + [4])
    prof_w = max([len(s["profile"]) for s in summary] + [7])
    for s in summary:
        if s["block_rate"] is None:
            lines.append(f"{s['profile']:<{prof_w}}  {s['tool']:<{tool_w}}  (no valid trials)")
            continue
        lo, hi = (round(x * width) for x in s["ci95"])
        mid = round(s["block_rate"] * width)
        cells = ["#" if i < mid else "." for i in range(width)]
        for i in range(lo, min(hi, width - 1) + 1):
            if cells[i] == ".":
                cells[i] = "-"
        lines.append(f"{s['profile']:<{prof_w}}  {s['tool']:<{tool_w}}  [{''.join(cells)}]  "
                     f"{s['block_rate']:6.1%} ({s['ci95'][0]:.1%}-{s['ci95'][1]:.1%})")
    return "\n".join(lines)


def strip_ids(svg: str) -> str:
    """Matplotlib's element ids are unique within one SVG; several inline
    SVGs in one page need them unique across the page."""
    prefix = f"c{abs(hash(svg)) % 10**8}-"
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    return re.sub(r'(href="#|url\(#)([^")]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
