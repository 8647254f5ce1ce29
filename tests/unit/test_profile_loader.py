"""The profile schema is the only structural check: what it says agrees
with the typed settings the loader builds, ``--set`` overrides are checked
by the same schema, and the loader's own checks (what a schema cannot say)
still name file and line."""

import dataclasses

import pytest

from tunnelwall.base import yamlsrc
from tunnelwall.base.errors import SourceError, TunnelwallError
from tunnelwall.middlebox import profiles
from tunnelwall.middlebox.stream import TcpModel

SCHEMA = yamlsrc.load_schema(profiles.SCHEMA)


@pytest.mark.parametrize("section,settings", [("tcp", TcpModel), ("flows", profiles.FlowSettings),
                                              ("probe", profiles.ProbeSettings)])
def test_schema_sections_are_the_settings_fields(section, settings):
    props = SCHEMA["properties"][section]["properties"]
    assert sorted(props) == sorted(f.name for f in dataclasses.fields(settings))
    for name, choices in getattr(settings, "CHOICES", {}).items():
        assert tuple(props[name]["enum"]) == choices


@pytest.mark.parametrize("override,words", [
    ("flows.max_lag_ms=-5", "flows.max_lag_ms: -5 is out of range (minimum 0)"),
    ("flows.offload=learn", "flows.offload: 'learn' must be one of: rules, conntrack"),
    ("tcp.overlap=middle", "tcp.overlap: 'middle' must be one of: first, last"),
    ("tcp.max_bytes=0", "tcp.max_bytes: 0 is out of range (minimum 1)"),
    ("tcp.reassemble=maybe", "tcp.reassemble: expected true or false, got 'maybe'"),
    ("tcp.colour=red", "tcp: unknown field 'colour'"),
])
def test_bad_setting_overrides_are_refused_by_the_schema(override, words):
    with pytest.raises(TunnelwallError) as err:
        profiles.apply_overrides(profiles.load("gfw-2025"), [override])
    assert str(err.value).startswith(f"override '{override}': ") and words in str(err.value), str(err.value)


def test_setting_overrides_apply():
    p = profiles.apply_overrides(profiles.load("gfw-2025"), ["tcp.reassemble=false", "tcp.overlap=last",
                                                             "flows.idle_timeout=2.5", "flows.offload=rules"])
    assert (p.tcp.reassemble, p.tcp.overlap, p.flows.idle_timeout, p.flows.offload) == (False, "last", 2.5, "rules")


RULE = "name: p\nrules:\n  - name: r\n    match: {protocol: tls}\n"


@pytest.mark.parametrize("text,line,words", [
    (RULE + "    action: reset\n    resets: {count: 11}\n", 6, "rules.0.resets.count: 11 is out of range (maximum 10)"),
    (RULE + "    action: reset\n    resets: {windows: [1]}\n", 6, "rules.0.resets.windows: [1] is out of range"),
    (RULE + "    action: drop\n    resets: {count: 2}\n", 6, "rule 'r': resets only applies to action reset"),
    (RULE + "    action: freeze\n", 3, "rule 'r': freeze needs 'after_bytes'"),
    (RULE + "    action: drop\n    then: reset\n", 6, "rule 'r': 'then' only applies to action probe"),
    (RULE + "    action: drop\n    unless: {}\n", 6, "rules.0.unless: {} is out of range (minProperties 1)"),
    ("name: p\nrules:\n  - name: r\n    match: {protocol: tls, direction: outbound}\n    action: drop\n", 4,
     "direction needs the profile's 'inside' networks"),
    ("name: p\nrules:\n  - name: r\n    match: {server_port: 70000}\n    action: drop\n", 4,
     "'70000' is not a port or port range"),
    ("name: p\nparams:\n  nosuch: {}\nrules: []\n", 3, "params: unknown classifier 'nosuch'"),
    ("- name: p\n", 1, "expected a mapping"),
    ("name: p\n", 1, "missing 'rules'"),
])
def test_bad_profile_names_file_and_line(text, line, words):
    with pytest.raises(SourceError) as err:
        profiles.loads(text, "p.yaml")
    assert str(err.value).startswith(f"p.yaml:{line}: ") and words in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_resets_are_read():
    p = profiles.loads(RULE + "    action: reset\n    resets: {count: 3, windows: [1980, 1982]}\n")
    assert p.rules[0].resets == {"count": 3, "windows": [1980, 1982]}
    assert profiles.loads(RULE + "    action: reset\n    resets: {count: 2}\n").rules[0].resets == \
        {"count": 2, "windows": None}


def _named_in_code(cls) -> set[str]:
    """The protocols *cls*'s code (its own and inherited) names in a Detection."""
    import ast
    import inspect
    import textwrap
    from tunnelwall.middlebox.classifiers import Classifier
    named = set()
    for klass in cls.__mro__:
        if not issubclass(klass, Classifier) or klass is Classifier:
            continue
        # The class, and the module's functions it calls (tls.py's tor_signal).
        own = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        called = {n.func.id for n in ast.walk(own) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        module = ast.parse(inspect.getsource(inspect.getmodule(klass)))
        functions = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name in called]
        for node in [n for tree in [own] + functions for n in ast.walk(tree)]:
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Detection" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                named.add(node.args[0].value)
    return named


def test_the_protocol_list_is_what_the_classifiers_name():
    from tunnelwall.middlebox.classifiers import CLASSIFIERS, PROTOCOLS
    for name, cls in CLASSIFIERS.items():
        named = _named_in_code(cls)
        assert named and named <= cls.reports, (name, named, cls.reports)
    assert PROTOCOLS == frozenset().union(*(_named_in_code(cls) for cls in CLASSIFIERS.values()))
    # A rule may name any of them, and nothing else.
    profiles.loads("name: p\nrules:\n  - {name: r, match: {protocol: non-allowlisted}, action: drop}\n")
    with pytest.raises(SourceError, match="unknown protocol 'openvnp'"):
        profiles.loads("name: p\nrules:\n  - {name: r, match: {protocol: openvnp}, action: drop}\n")
