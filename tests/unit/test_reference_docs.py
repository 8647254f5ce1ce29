"""The YAML references in docs/reference are the schemas' (scripts/gen_reference.py), and descriptions are true."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_references_are_in_step_with_the_schemas():
    gen = _generator()
    for filename, schema, title, example in gen.REFERENCES:
        assert (ROOT / "docs" / "reference" / filename).read_text() == gen.render(schema, title, example), \
            f"docs/reference/{filename} is out of step: run scripts/gen_reference.py"
        assert (ROOT / example).exists()


def test_the_fields_newcomers_asked_about_are_described():
    gen = _generator()
    topology = gen.render("topologies/schema.json", "t", "x")
    profile = gen.render("middlebox/profiles/schema.json", "p", "x")
    for field in ("services", "routes", "interfaces6"):
        row = next(line for line in topology.splitlines() if line.startswith(f"| `{field}`"))
        assert row.rstrip(" |").split("|")[-1].strip(), field
    for field in ("params", "inspect_packets", "min_confidence", "probe", "lists", "unless", "probability"):
        row = next(line for line in profile.splitlines() if line.startswith(f"| `{field}`"))
        assert len(row.split("|")[4].strip()) > 10, field


def test_log_only_says_what_it_detects_and_what_not():
    from tunnelwall.middlebox import profiles
    log_only, gfw = profiles.load("log-only"), profiles.load("gfw")
    assert all(r.action == "log" for r in log_only.rules)
    missing = {r.name for r in gfw.rules} - {r.name for r in log_only.rules}
    assert missing, "log-only now has every gfw rule: its description may say so again"
    assert "everything" not in log_only.description
    for word in ("HTTP Host", "TLS-in-TLS", "ESNI", "never probes"):
        assert word in log_only.description, word
