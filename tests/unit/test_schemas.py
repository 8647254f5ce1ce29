"""One source of validation: every YAML kind has a JSON Schema, every file
shipped passes it, and a schema error names file and line."""

from pathlib import Path

import jsonschema
import pytest

from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import SourceError

ROOT = Path(__file__).resolve().parents[2]
KINDS = {
    "topologies/schema.json": sorted((ROOT / "topologies").glob("*.yaml")),
    "middlebox/profiles/schema.json": sorted((ROOT / "middlebox/profiles").glob("*.yaml"))
    + sorted((ROOT / "exercises/profiles").glob("*.yaml")),
    "tunnelwall/harness/tool.schema.json": sorted((ROOT / "tunnelwall/tools").glob("*.yaml"))
    + sorted((ROOT / "exercises/solutions").glob("*.yaml")) + [ROOT / "examples/my-tls-tunnel.yaml"],
    "tunnelwall/classroom/exercise.schema.json": sorted((ROOT / "exercises").glob("*.yaml")),
}


@pytest.mark.parametrize("schema", sorted(KINDS))
def test_schema_is_valid_and_every_shipped_file_passes_it(schema):
    doc = yamlsrc.load_schema(ROOT / schema)
    jsonschema.Draft202012Validator.check_schema(doc)
    files = KINDS[schema]
    assert len(files) >= 2
    for path in files:
        yamlsrc.validate(yamlsrc.load(path), doc, str(path))


@pytest.mark.parametrize("schema,text,line,words", [
    ("topologies/schema.json", "nodes:\n  c1:\n    role: client\n    ipp: 10.0.0.1/24\n", 4,
     "nodes.c1: unknown field 'ipp'"),
    ("middlebox/profiles/schema.json", "name: p\nrules:\n  - name: r\n    match: {protocol: tls}\n    action: block\n",
     5, "rules.0.action: 'block' must be one of"),
    ("tunnelwall/harness/tool.schema.json", "name: t\ntraffic:\n  url: u\n  insecure: maybe\n", 4,
     "traffic.insecure: expected true or false, got 'maybe'"),
    ("tunnelwall/classroom/exercise.schema.json", "name: e\ntitle: t\ntopology: isp\nprofile: gfw\ngoal: g\n"
     "checks:\n  - kind: forward\n    bytes: 0\n", 8, "checks.0.bytes: 0 is out of range"),
])
def test_schema_errors_name_the_line(schema, text, line, words):
    with pytest.raises(SourceError) as err:
        yamlsrc.validate(yamlsrc.load("x.yaml", text), yamlsrc.load_schema(ROOT / schema), "x.yaml")
    assert str(err.value).startswith(f"x.yaml:{line}: ") and words in str(err.value), str(err.value)
