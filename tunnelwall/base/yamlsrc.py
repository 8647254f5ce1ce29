"""YAML loading that remembers line numbers.

PyYAML's ``safe_load`` forgets where values came from, so error messages
could not say "file:line". We compose the node graph ourselves and build
``Mapping``/``Sequence`` values that carry the 1-based line of every key and
item. Only the safe YAML subset is accepted (no tags, no Python objects).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tunnelwall.base.errors import SourceError


class Mapping(dict):
    """A dict that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class Sequence(list):
    """A list that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


def line_of(value: Any, default: int = 0) -> int:
    return getattr(value, "line", default) or default


def _build(node: yaml.Node, path: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = Mapping()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = _build(key_node, path)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SourceError(path, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            if key in out:
                raise SourceError(path, key_node.start_mark.line + 1, f"duplicate key '{key}'")
            out.key_lines[key] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = Sequence(_build(item, path) for item in node.value)
        seq.line = line
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq
    # Scalars: resolve with the safe constructor so "1", "true", "1.5" keep their types.
    if node.tag.startswith("tag:yaml.org,2002:"):
        return _SCALARS.construct_object(node, deep=True)
    raise SourceError(path, line, f"unsupported YAML tag {node.tag}")


_SCALARS = yaml.SafeLoader("")


def load(path: str | Path, text: str | None = None) -> Any:
    """Load one YAML document from *path*; errors carry file:line."""
    path = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SourceError(path, None, "file not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise SourceError(path, None, f"cannot read: {err}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        problem = (err.problem or err.context or "syntax error").strip()
        raise SourceError(path, line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as err:
        raise SourceError(path, None, f"YAML error: {err}") from None
    if node is None:
        raise SourceError(path, 1, "the file is empty")
    return _build(node, path)


def find(spec: str, catalogue: dict[str, Path], kind: str, hint: str = "") -> Path:
    """A catalogue name or a path to a YAML file -> the file; unknown names
    get one line listing what exists."""
    from tunnelwall.base.errors import TunnelwallError
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        return path
    if spec in catalogue:
        return catalogue[spec]
    raise TunnelwallError(f"unknown {kind} '{spec}' (available: {', '.join(catalogue)}{hint})")


def check_mapping(data: Any, path: str, what: str, allowed: set[str] | frozenset[str],
                  required: tuple[str, ...] = (), top_level: bool = True) -> "Mapping":
    """The shared first checks of every loader: the document is a mapping,
    has no unknown keys (a typo is an error, not a silently ignored key) and
    has the required ones. Returns the mapping."""
    if not isinstance(data, Mapping):
        raise SourceError(path, line_of(data, 1), f"{what} must be a mapping"
                          + (f" with {' and '.join(repr(k) for k in required[:2])}" if required else ""))
    label = "top-level key" if top_level else "key"
    for key in data:
        if key not in allowed:
            raise SourceError(path, data.line_of(key),
                              f"unknown {label} '{key}' (expected one of: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in data:
            raise SourceError(path, data.line, f"missing '{key}'")
    return data
