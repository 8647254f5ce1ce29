"""The verdicts verb's records and filters, and the node shell's argv (byte-exact, no network)."""

import io
import json

import pytest

from tunnelwall.base.layout import Layout

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.runtime import verdictwatch

RECORD = {"time": 1765130000.25, "profile": "gfw-2025", "flow": {"transport": "tcp", "client": "10.0.0.11",
          "client_port": 40000, "server": "10.0.0.20", "server_port": 80}, "protocol": "http",
          "rule": "http-host", "action": "reset", "packet_index": 4, "ms": 1.5,
          "detection": {"protocol": "http", "signal": "host", "confidence": 1.0,
                        "detail": {"host": "blocked.example"}}, "installed": True, "decided": 1765130000.2}
ALLOWED = dict(RECORD, rule=None, action="allow", protocol="tls", detection=None, time=1765130001.0,
               flow=dict(RECORD["flow"], server_port=443, client_port=40001))


def seen(record):
    return verdictwatch.SeenVerdict.from_record(record)


def test_a_record_becomes_a_verdict_with_its_name():
    s = seen(RECORD)
    assert (s.verdict.rule, s.verdict.action, s.verdict.packet_index, s.name, s.installed) == \
        ("http-host", "reset", 4, "blocked.example", True)
    assert s.one_line() == "reset http-host http tcp 10.0.0.11:40000 -> 10.0.0.20:80 pkt 4 blocked.example"


@pytest.mark.parametrize("text,hits", [
    (["port=80"], [True, False]), (["port=443"], [False, True]), (["client=10.0.0.11"], [True, True]),
    (["client=10.0.0.1"], [False, False]), (["blocked"], [True, False]), (["action=allow"], [False, True]),
    (["protocol=http sport=80"], [True, False]), (["protocol=http", "sport=443"], [False, False]),
    (["name=blocked.example"], [True, False]), (["TLS"], [False, True]), ([], [True, True])])
def test_flow_filters(text, hits):
    terms = verdictwatch.parse_filter(text)
    assert [verdictwatch.matches(terms, seen(r)) for r in (RECORD, ALLOWED)] == hits


def test_a_bad_filter_is_one_clear_line():
    with pytest.raises(TunnelwallError, match="--flow 'colour=red': write KEY=VALUE with KEY one of client"):
        verdictwatch.parse_filter(["colour=red"])


def test_the_log_source_reads_whole_lines_only(tmp_path):
    log = tmp_path / "verdicts.jsonl"
    log.write_text(json.dumps(RECORD) + "\n" + json.dumps(ALLOWED)[:20])
    src = verdictwatch.LogSource(log)
    assert [s.verdict.rule for s in src.fetch()] == ["http-host"]
    assert src.fetch() == []
    with log.open("a") as fh:
        fh.write(json.dumps(ALLOWED)[20:] + "\n")
    assert [s.verdict.action for s in src.fetch()] == ["allow"]


def test_the_log_source_passes_over_probe_and_watchdog_records(tmp_path):
    # The controller writes the prober's answers and the watchdog's stalls into the same log.
    probe = {"time": 1765130002.0, "type": "probe", "profile": "gfw-2025", "server": "198.18.0.30",
             "server_port": 443, "rule": "tor", "fingerprint": "tor", "confirmed": True, "reactions": []}
    stall = {"time": 1765130003.0, "type": "watchdog", "profile": "gfw-2025", "stalled_ms": 612.0}
    log = tmp_path / "verdicts.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in (RECORD, probe, stall, ALLOWED)))
    assert [s.verdict.action for s in verdictwatch.LogSource(log).fetch()] == ["reset", "allow"]
    assert seen(probe) is None


def test_a_line_that_is_no_json_is_one_clear_error(tmp_path):
    log = tmp_path / "verdicts.jsonl"
    log.write_text("{not json\n")
    with pytest.raises(TunnelwallError, match="a line that is not a verdict record"):
        verdictwatch.LogSource(log).fetch()


def test_the_api_source_asks_only_for_newer_verdicts():
    asked = []

    class FakeApi:
        def call(self, path, timeout):
            asked.append((path, timeout))
            return [RECORD] if len(asked) == 1 else []
    src = verdictwatch.ApiSource(FakeApi(), step_timeout=2.0)
    assert len(src.fetch()) == 1 and src.fetch() == []
    assert asked == [("/api/verdicts?since=0.0", 2.0), (f"/api/verdicts?since={RECORD['time']}", 2.0)]


def test_the_verb_prints_a_table_and_json(tmp_path):
    from tunnelwall.cli.main import main
    log = tmp_path / "verdicts.jsonl"
    log.write_text(json.dumps(RECORD) + "\n" + json.dumps(ALLOWED) + "\n")
    out = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(out):
        assert main(["verdicts", "--log", str(log), "--flow", "port=80"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["time", "action", "rule", "protocol", "flow", "pkt", "ms", "name"]
    assert len(lines) == 2 and "reset" in lines[1] and "http-host" in lines[1] and lines[1].endswith("blocked.example")
    assert "\033[" not in out.getvalue()                 # not a terminal: no colour
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["verdicts", "--log", str(log), "--format", "json"]) == 0
    assert [json.loads(x)["action"] for x in out.getvalue().splitlines()] == ["reset", "allow"]


class FakeState:
    layout = Layout.from_json({"topology": "t", "nodes": {
        "c1": {"role": "client", "netns": "tw-c1", "index": 1,
               "interfaces": {"eth0": {"mac": "02:00:00:00:00:01", "address": "10.0.0.11/24"}}},
        "s1": {"role": "server", "netns": "tw-s1", "index": 2,
               "interfaces": {"eth0": {"mac": "02:00:00:00:00:02", "address": "10.0.0.20/24"}}}}})

    def netns_of(self, node):
        return f"tw-{node}"


def shell_with(lines, monkeypatch):
    from tunnelwall.cli import nodeshell
    ran = []

    class FakePopen:
        def __init__(self, argv):
            ran.append(argv)

        def wait(self, timeout=None):
            return 0
    monkeypatch.setattr(nodeshell.subprocess, "Popen", FakePopen)
    out = io.StringIO()
    shell = nodeshell.NodeShell(FakeState(), stdin=io.StringIO("".join(line + "\n" for line in lines)), stdout=out)
    shell.loop()
    return ran, out.getvalue()


def test_the_node_shell_keeps_quoting(monkeypatch):
    ran, _ = shell_with(['c1 curl -s -H "Host: blocked.example" http://10.0.0.20/',
                         "s1 printf '%s|' 'a b' \"c'd\" e\\ f"], monkeypatch)
    assert ran == [["ip", "netns", "exec", "tw-c1", "curl", "-s", "-H", "Host: blocked.example", "http://10.0.0.20/"],
                   ["ip", "netns", "exec", "tw-s1", "printf", "%s|", "a b", "c'd", "e f"]]


def test_the_node_shell_helps_and_completes(monkeypatch):
    from tunnelwall.cli import nodeshell
    ran, out = shell_with(["help", "nodes", "c9 ls", "c1", 'c1 echo "unclosed'], monkeypatch)
    assert ran == []
    assert "NODE COMMAND...   run COMMAND on NODE" in out and "verdicts [-f]" in out and "nodes: c1 s1" in out
    assert "c1           client         10.0.0.11/24" in out
    assert "unknown node or command 'c9'" in out and "c1: give a command" in out
    assert "cannot split that line: No closing quotation" in out
    shell = nodeshell.NodeShell(FakeState(), stdin=io.StringIO(), stdout=io.StringIO())
    assert shell.completenames("c") == ["c1"]
    assert shell.completenames("") == ["c1", "s1", "nodes", "verdicts", "exit", "help"]
    assert shell.completedefault("s", "c1 ping s", 8, 9) == ["s1"]


def test_the_node_shell_shows_verdicts(monkeypatch, tmp_path):
    log = tmp_path / "verdicts.jsonl"
    log.write_text(json.dumps(RECORD) + "\n")
    _, out = shell_with([f"verdicts --log {log} --flow rule=http-host", "verdicts --flow bad=1"], monkeypatch)
    assert "http-host" in out and "blocked.example" in out
    assert "verdicts: --flow 'bad=1'" in out


def test_root_never_writes_through_a_students_symlink(tmp_path):
    from tunnelwall.runtime.accounts import write_file
    target = tmp_path / "shadow"
    target.write_text("secret\n")
    folder = tmp_path / "st01"
    folder.mkdir()
    (folder / "HINTS.txt").symlink_to(target)
    write_file(folder / "HINTS.txt", "hint 1: x\n")
    assert target.read_text() == "secret\n"
    assert not (folder / "HINTS.txt").is_symlink() and (folder / "HINTS.txt").read_text() == "hint 1: x\n"


def test_exercise_stop_on_one_machine_needs_no_class_file(monkeypatch, tmp_path, capsys):
    # It used to look for class-NAME.json (a cluster's class) and fail with "no such class file".
    from tunnelwall.base import runstate
    from tunnelwall.cli.main import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runstate, "active_run", lambda *a, **k: None)
    assert main(["exercise", "stop", "find-blocked"]) == 2
    err = capsys.readouterr().err
    assert "no exercise is running on this machine" in err and "class file" not in err.replace("--class-file", "")


def test_exercises_from_any_folder(tmp_path):
    from tunnelwall.classroom import exercises
    mine = tmp_path / "my-find.yaml"
    mine.write_text((exercises.EXERCISE_DIR / "find-blocked.yaml").read_text().replace("name: find-blocked",
                                                                                     "name: my-find"))
    assert "my-find" not in exercises.catalogue()
    assert exercises.catalogue((str(tmp_path),))["my-find"] == mine
    assert exercises.load("my-find", (str(tmp_path),)).name == "my-find"
    with pytest.raises(TunnelwallError, match="not a folder"):
        exercises.catalogue((str(tmp_path / "nope"),))


def test_up_suggests_a_blocked_fetch_and_the_verdicts_not_ping():
    import importlib
    main = importlib.import_module("tunnelwall.cli.main")
    state = FakeState()
    state.scope = ""
    lines = main.try_lines(state)
    assert lines[0] == "  try:   tunnelwall exec c1 -- curl -s -m 5 -H 'Host: blocked.example' http://10.0.0.20/"
    assert "tunnelwall verdicts" in lines[1] and not any("ping" in x for x in lines)
