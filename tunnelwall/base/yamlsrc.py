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


# -- JSON Schema, with errors at the YAML line -------------------------------
#
# Each YAML kind (topology, profile, tool, exercise) ships a JSON Schema next
# to its loader; editors use it, and so does the loader, through
# ``validate``: the schema says what keys and types there are, the loader
# checks only what a schema cannot (addresses in subnets, references between
# nodes). jsonschema is the well-kept implementation; what we add is the
# mapping of an error's path back to the line of the YAML node.

_SCHEMAS: dict[str, Any] = {}


def load_schema(path: str | Path) -> dict:
    key = str(path)
    if key not in _SCHEMAS:
        import json
        _SCHEMAS[key] = json.loads(Path(path).read_text())
    return _SCHEMAS[key]


def validate(data: Any, schema: dict, path: str) -> None:
    """Raise SourceError("FILE:LINE: message") for the first way *data*
    breaks *schema* (the deepest, most specific error)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data), key=_relevance)
    if error is None:
        return
    node, line = data, line_of(data, 1)
    parents = list(error.absolute_path)
    for step in parents:
        if isinstance(node, (Mapping, Sequence)):
            line = node.line_of(step) or line
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    if error.validator == "additionalProperties" and isinstance(node, Mapping):
        extra = [k for k in node if k not in error.schema.get("properties", {})]
        if extra:
            line = node.line_of(extra[0])          # the line of the unknown key itself
    raise SourceError(path, line, _message(error, parents))


def _relevance(error):
    # Prefer deep errors, and among them ones about keys and values rather
    # than a failed anyOf.
    return -len(error.absolute_path), error.validator in ("anyOf", "oneOf")


def _where(parents: list) -> str:
    return ".".join(str(p) for p in parents)


def _message(error, parents: list) -> str:
    where = _where(parents)
    prefix = f"{where}: " if where else ""
    kind, value, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        what = f"unknown field '{extra[0]}'" if extra else "unknown field"
        return f"{prefix}{what} (expected one of: {', '.join(allowed)})" if allowed else f"{prefix}{what}"
    if kind == "required":
        missing = [k for k in error.validator_value if not isinstance(value, dict) or k not in value]
        return f"{prefix}missing '{missing[0] if missing else error.validator_value[0]}'"
    if kind == "enum":
        return f"{prefix}'{value}' must be one of: {', '.join(map(str, error.validator_value))}"
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
                 "number": "a number", "boolean": "true or false", "null": "nothing"}
        return f"{prefix}expected {names.get(wanted, wanted)}, got {value!r}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minItems", "maxItems",
                "minProperties", "minLength", "maxLength"):
        return f"{prefix}{value!r} is out of range ({kind} {error.validator_value})"
    if kind == "pattern":
        hint = schema.get("description")
        return f"{prefix}'{value}' is not valid here" + (f" ({hint})" if hint else "")
    return f"{prefix}{error.message}"
