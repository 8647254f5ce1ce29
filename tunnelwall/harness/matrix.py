"""The verify matrix as cells, shards of it, and the merge of shards.

A *cell* is one run of one tool under one profile: (profile, tool, trial).
Cells are numbered in one canonical order (profile, then tool, then trial,
each in the order given on the command line), so every machine that is given
the same matrix numbers it the same way. ``verify --shard K/N`` runs the
cells whose number is K-1 modulo N: interleaved, so each shard gets a fair
part of every profile and of every slow tool, and the assignment needs no
coordination at all. ``merge`` checks that the shards came from one matrix
and cover each cell exactly once, then orders the results canonically and
recomputes the statistics (block rates, intervals) from the merged counts,
so the merged file reads like a single unsharded run's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import TunnelwallError

SCHEMA = "tunnelwall-results/2"
# What must be equal for two result files to belong to one matrix.
MATRIX_KEYS = ("profiles", "tools", "trials", "topology", "bytes", "seed", "overrides", "placement", "ipv6",
               "requests", "inner")


@dataclass(frozen=True)
class Cell:
    index: int
    profile: str
    tool: str
    trial: int


def cells(profiles: list[str], tools: list[str], trials: int) -> list[Cell]:
    out = []
    for profile in profiles:
        for tool in tools:
            for trial in range(1, trials + 1):
                out.append(Cell(len(out), profile, tool, trial))
    return out


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise TunnelwallError(f"--shard '{text}': write K/N with 1 <= K <= N, e.g. 2/4")
    return int(m.group(1)), int(m.group(2))


def shard(all_cells: list[Cell], k: int, n: int) -> list[Cell]:
    return [c for c in all_cells if c.index % n == k - 1]


def sub_shard(k: int, n: int, j: int, jobs: int) -> tuple[int, int]:
    """The j-th of *jobs* parts of shard k/n, itself a shard of the matrix:
    the cells with i % (n*jobs) == (k-1) + n*(j-1) are exactly those of
    shard k/n whose position falls to part j."""
    return (k - 1) + n * (j - 1) + 1, n * jobs


def merge(documents: list[tuple[str, dict]], shard_of: tuple[int, int] | None = None) -> dict:
    """One results document from the shards' documents ((name, parsed JSON)
    pairs). Raises TunnelwallError naming the file when they do not fit.
    *shard_of*: the documents together make shard (K, N), not the whole
    matrix (``verify --shard K/N --jobs J``)."""
    from tunnelwall.harness import stats
    from tunnelwall.harness.runner import ToolResult
    if not documents:
        raise TunnelwallError("merge: no result files given")
    first_name, first = documents[0]
    matrix = _matrix_of(first_name, first)
    numbered = cells(matrix["profiles"], matrix["tools"], matrix["trials"])
    expected = shard(numbered, *shard_of) if shard_of else numbered
    wanted = {c.index for c in expected}
    seen: dict[int, str] = {}
    results = []
    elapsed = 0.0
    for i, (name, doc) in enumerate(documents):
        if i and _matrix_of(name, doc) != matrix:
            diff = [k for k in MATRIX_KEYS if doc["meta"]["matrix"].get(k) != matrix.get(k)]
            raise TunnelwallError(f"{name}: not the same matrix as {first_name} (differs in: {', '.join(diff)})")
        elapsed += float(doc["meta"].get("elapsed_s") or 0.0)
        for i, r in enumerate(doc["results"]):
            cell = r.get("cell")
            if not isinstance(cell, int) or cell not in wanted:
                raise TunnelwallError(f"{name}: result {i + 1} has no valid cell number for this matrix"
                                      f"{' shard' if shard_of else ''} (from an older tunnelwall?)")
            want = numbered[cell]
            if (r.get("profile"), r.get("tool"), r.get("trial")) != (want.profile, want.tool, want.trial):
                raise TunnelwallError(f"{name}: result {i + 1} says {r.get('profile')}/{r.get('tool')} "
                                      f"trial {r.get('trial')}, but cell {cell} is {want.profile}/{want.tool} "
                                      f"trial {want.trial}")
            if cell in seen:
                raise TunnelwallError(f"{name}: cell {cell} ({want.profile}/{want.tool} trial {want.trial}) "
                                      f"is also in {seen[cell]}")
            seen[cell] = name
            results.append(r)
    missing = [c for c in expected if c.index not in seen]
    if missing:
        c = missing[0]
        raise TunnelwallError(f"merge: {len(missing)} of {len(expected)} cells missing, e.g. cell {c.index} "
                              f"({c.profile}/{c.tool} trial {c.trial}); is a shard's file left out?")
    results.sort(key=lambda r: r["cell"])
    meta = {k: v for k, v in first["meta"].items() if k not in ("shard", "started", "elapsed_s")}
    meta["started"] = min(str(d["meta"].get("started", "")) for _n, d in documents)
    meta["elapsed_s"] = round(elapsed, 1)
    meta["merged_from"] = len(documents)
    meta["matrix"] = {**first["meta"]["matrix"], "profiles": matrix["profiles"]}
    mixed = _provenance_differences(documents)
    if mixed:
        meta["provenance_mixed"] = mixed
    if shard_of:
        meta["shard"] = f"{shard_of[0]}/{shard_of[1]}"
    out = {"schema": SCHEMA, "meta": meta, "results": results}
    if matrix["trials"] > 1:
        out["summary"] = stats.summarize([ToolResult.from_dict(r) for r in results], elapsed or None)
    return out


def _provenance_differences(documents: list[tuple[str, dict]]) -> list[str]:
    """How the parts' provenance differs from the first part's (parts run
    on other machines may have another tunnelwall or datapath)."""
    from tunnelwall.harness.provenance import Provenance
    first_name, first = documents[0]
    if "provenance" not in first["meta"]:
        return []
    base = Provenance.from_dict(first["meta"]["provenance"])
    out = []
    for name, doc in documents[1:]:
        if "provenance" in doc["meta"]:
            out += [f"{name}: {d}" for d in base.differences(Provenance.from_dict(doc["meta"]["provenance"]))]
    return out


def check(name: str, doc) -> None:
    """*doc* is a results document of this version (results.schema.json),
    or a one-line error naming the file and the first wrong field."""
    import jsonschema
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise TunnelwallError(f"{name}: not a results file of 'tunnelwall verify --format json' ({SCHEMA}"
                              f"{', it says ' + repr(found) if found else ''})")
    schema = yamlsrc.load_schema(Path(__file__).with_name("results.schema.json"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        raise TunnelwallError(f"{name}: {where}: {error.message}")


def _matrix_of(name: str, doc: dict) -> dict:
    check(name, doc)
    matrix = doc.get("meta", {}).get("matrix")
    if not isinstance(matrix, dict) or any(k not in matrix for k in ("profiles", "tools", "trials")):
        raise TunnelwallError(f"{name}: its meta has no 'matrix' (written by an older tunnelwall?)")
    out = {k: matrix.get(k) for k in MATRIX_KEYS}
    # Files of older versions list the profiles as given (gfw) while their
    # results carry the profile's name (gfw-2025): read them by the name.
    out["profiles"] = [canonical_profile(p) for p in out["profiles"]]
    return out


def canonical_profile(name: str) -> str:
    """A built-in alias's profile name (gfw -> gfw-2025); any other name as it is."""
    from tunnelwall.middlebox.profiles import ALIASES
    return ALIASES.get(name, name)


def read(path: str | Path) -> dict:
    """A results file's JSON, or a one-line error (not yet checked: see check)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TunnelwallError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:
        raise TunnelwallError(f"{path}: not a results file from 'tunnelwall verify --format json' ({err})") from None


def load(path: str | Path) -> dict:
    """A results file, read and checked against results.schema.json."""
    data = read(path)
    check(str(path), data)
    return data
