"""Help conventions shared by every verb: defaults shown, an example per
verb, the exit codes, colour only on a terminal.

Verb modules only declare their arguments (each with ``help``); ``finish``
walks the finished parser once and gives every verb parser the same
formatter and its example, so a verb cannot forget either
(``tests/unit/test_cli_help.py`` fails on an argument without help and on a
verb without an example).
"""

from __future__ import annotations

import argparse
import os

EXIT_CODES = """exit codes:
  0    success (verify: every cell as expected; exercise check: every host passed)
  1    a result that is not success: a regression (compare), a missed expectation or an ERROR cell
       (verify), a failed check (exercise check)
  2    bad input or state: a wrong file, name or argument, no run up (one line on stderr)
  3    the machine lacks something: not root, a missing program or kernel feature, Docker
  130  interrupted (Ctrl-C), except where Ctrl-C is the normal end (verdicts -f, capture: 0)"""

# One example per verb: what a newcomer types first. A verb missing here
# fails the help test, so a new verb comes with its example.
EXAMPLES: dict[str, str] = {
    "up": "tunnelwall up minimal --profile gfw        # returns; the network stays up\n"
          "  tunnelwall up minimal --profile gfw --cli  # a node shell; leaving it tears down",
    "down": "tunnelwall down",
    "cleanup": "tunnelwall cleanup            # everything of ours, even after kill -9\n"
               "  tunnelwall cleanup 1          # only run scope 1",
    "runs": "tunnelwall runs --format json",
    "inspect": "tunnelwall inspect",
    "validate": "tunnelwall validate topologies/isp.yaml middlebox/profiles/gfw-2025.yaml",
    "topologies": "tunnelwall topologies",
    "exec": "tunnelwall exec c1 -- curl -s -m 5 -H 'Host: blocked.example' http://10.0.0.20/",
    "verdicts": "tunnelwall verdicts -f --flow 'port=80'       # follow; Ctrl-C ends (exit 0)\n"
                "  tunnelwall verdicts --flow client=10.0.0.11 --format json",
    "classify": "tunnelwall classify capture.pcapng --profile gfw-2022 --limit 20",
    "probe": "tunnelwall probe 198.18.0.20:8388 --replay-random 50",
    "exercise": "tunnelwall exercise start find-blocked && tunnelwall exercise check find-blocked",
    "images": "tunnelwall images list",
    "profiles": "tunnelwall profiles show gfw",
    "capture": "tunnelwall capture c1:eth0 -w c1.pcapng --seconds 30",
    "graph": "tunnelwall graph isp --format dot | dot -Tsvg > isp.svg",
    "compare": "tunnelwall compare baseline.json new.json",
    "collateral": "tunnelwall collateral --profile tspu-2021 --connections 30",
    "cluster": "tunnelwall cluster head --listen 0.0.0.0 --tls certs/",
    "verify": "tunnelwall verify --profile gfw,log-only --tools wireguard,shadowsocks --report out/",
    "merge": "tunnelwall merge s1.json s2.json -o all.json",
    "tools": "tunnelwall tools",
    "fidelity": "tunnelwall fidelity gfw-2025                 # the published vectors against today's GFW\n"
                "  tunnelwall fidelity --format markdown > fidelity.md",
}


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows an argument's default after its help, unless the help already
    says it or there is nothing worth saying (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or "%(default)" in text or default in (None, False, [], "", argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            return f"{text} (default: %(default)s)"
        return text


def verb_parsers(ap: argparse.ArgumentParser, prefix: str = ""):
    """(name, parser) for every verb and sub-verb under *ap*, depth first."""
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, parser in action.choices.items():
                full = f"{prefix}{name}"
                yield full, parser
                yield from verb_parsers(parser, full + " ")


def finish(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give the top parser and every verb parser the formatter, and each
    top-level verb its example and the exit codes."""
    ap.formatter_class = Formatter
    ap.epilog = EXIT_CODES
    for name, parser in verb_parsers(ap):
        parser.formatter_class = Formatter
        top = name.split(" ")[0]
        if parser.epilog is None and top in EXAMPLES:
            parser.epilog = f"example:\n  {EXAMPLES[top]}\n\n{EXIT_CODES}"
    return ap


def color_enabled(stream) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_CODES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}


def paint(text: str, colour: str, enabled: bool) -> str:
    return f"\033[{_CODES[colour]}m{text}\033[0m" if enabled else text
