"""Every verb's arguments have help, every verb an example; the conventions of the command line."""

import argparse
import io

import pytest

import importlib

from tunnelwall.cli import helptext

main = importlib.import_module("tunnelwall.cli.main")      # tunnelwall.cli.main the name is the function


def _parser():
    main._load_verb_modules()
    return main.build_parser()


def _arguments(parser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
            continue
        yield action


def test_every_argument_of_every_verb_has_help():
    ap = _parser()
    missing = [f"{name or 'tunnelwall'}: {a.option_strings or a.dest}"
               for name, parser in [("", ap), *helptext.verb_parsers(ap)]
               for a in _arguments(parser) if a.help is None or not a.help.strip()]
    assert missing == []


def test_every_verb_has_an_example_and_the_exit_codes():
    ap = _parser()
    verbs = [name for name, _ in helptext.verb_parsers(ap) if " " not in name]
    assert len(verbs) >= 20
    for name, parser in helptext.verb_parsers(ap):
        if " " in name:
            continue
        assert "example:\n  tunnelwall " in parser.format_help(), name
        assert "130  interrupted" in parser.format_help(), name
    assert "exit codes:" in ap.format_help()


def test_defaults_are_shown_once():
    ap = _parser()
    verdicts = dict(helptext.verb_parsers(ap))["verdicts"]
    text = " ".join(verdicts.format_help().split())
    assert "with -f: seconds between polls (default: 0.5)" in text
    classify = " ".join(dict(helptext.verb_parsers(ap))["classify"].format_help().split())
    assert classify.count("(default: gfw)") == 1            # its help already said it
    assert "(default: None)" not in classify and "(default: False)" not in classify


def test_sub_verbs_are_nested_parsers_everywhere():
    ap = _parser()
    names = {name for name, _ in helptext.verb_parsers(ap)}
    for expected in ("exercise start", "exercise stop", "exercise reset", "exercise shell", "exercise hint",
                     "images build", "images list", "profiles show", "profiles list", "cluster head"):
        assert expected in names
    args = ap.parse_args(["profiles"])
    assert (args.action, args.format) == ("list", "table")
    args = ap.parse_args(["profiles", "--format", "json", "show", "gfw"])
    assert (args.action, args.name, args.format) == ("show", "gfw", "json")
    args = ap.parse_args(["profiles", "show", "gfw", "--format", "json"])
    assert args.format == "json"
    args = ap.parse_args(["exercise", "check", "find-blocked", "--format", "json"])
    assert (args.action, args.name, args.format, args.cluster) == ("check", "find-blocked", "json", None)


def test_exec_keeps_the_command_untouched():
    args = _parser().parse_args(["exec", "c1", "--", "curl", "-H", "Host: blocked.example", "http://x/"])
    assert args.command == ["curl", "-H", "Host: blocked.example", "http://x/"]


def test_colour_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert helptext.color_enabled(Tty())
    assert not helptext.color_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not helptext.color_enabled(Tty())
    assert helptext.paint("x", "red", False) == "x"
    assert helptext.paint("x", "red", True) == "\033[31mx\033[0m"


def test_quiet_keeps_errors_only(capsys):
    sink = io.StringIO()
    quiet = main._ErrorsOnly(sink)
    quiet.write("[verify] bringing up isp ...\ntunnelwall: no run is up\npartial")
    assert sink.getvalue() == "tunnelwall: no run is up\n"


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["-q", "-v", "runs"])
