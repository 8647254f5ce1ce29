"""Watching the censor's decisions as they happen (``tunnelwall verdicts``).

Two sources give the same records: the controller's REST API
(``/api/verdicts?since=EPOCH``, the recent ones it keeps in memory) and the
run's verdict log (``verdicts.jsonl``, every verdict, one JSON line each;
readable after the run, and when the controller is away). A record becomes a
:class:`SeenVerdict` (the wire :class:`~tunnelwall.base.verdict.Verdict`
plus what the controller added: whether its rule went on the switch).

``--flow`` filters are pure functions of a verdict: every term must match.
A term ``KEY=VALUE`` compares one field (``client``, ``server``, ``port`` =
either port, ``cport``, ``sport``, ``transport``, ``protocol``, ``rule``,
``action``, ``name`` = the SNI, Host or DNS name seen), a bare term is a
case-insensitive substring of the verdict's one-line form.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tunnelwall.base.errors import TunnelwallError
from tunnelwall.base.verdict import LoggedVerdict, Verdict


@dataclass(frozen=True)
class SeenVerdict:
    verdict: Verdict
    installed: bool            # the controller put a rule on the switch for it
    name: str                  # the SNI, HTTP Host or DNS name that decided, or ""

    @classmethod
    def from_logged(cls, logged: LoggedVerdict) -> SeenVerdict:
        verdict = logged.verdict
        detail = verdict.detection.detail if verdict.detection else {}
        name = next((str(detail[k]) for k in ("sni", "host", "qname", "name") if detail.get(k)), "")
        return cls(verdict, logged.installed, name)

    @classmethod
    def from_record(cls, record: dict) -> SeenVerdict | None:
        """None for the log's records that are not verdicts (probe results,
        watchdog stalls): LoggedVerdict is the one place that tells them apart."""
        logged = LoggedVerdict.from_record(record)
        return cls.from_logged(logged) if logged else None

    @property
    def time(self) -> float:
        return self.verdict.time

    def one_line(self) -> str:
        v = self.verdict
        return (f"{v.action} {v.rule or '-'} {v.protocol or '-'} {v.flow} pkt {v.packet_index}"
                + (f" {self.name}" if self.name else ""))


FIELDS = ("client", "server", "port", "cport", "sport", "transport", "protocol", "rule", "action", "name")


@dataclass(frozen=True)
class Term:
    key: str | None          # None: a substring of the one-line form
    value: str

    def matches(self, seen: SeenVerdict) -> bool:
        v, f = seen.verdict, seen.verdict.flow
        value = self.value.lower()
        if self.key is None:
            return value in seen.one_line().lower()
        if self.key == "port":
            return value in (str(f.client_port), str(f.server_port))
        if self.key == "name":
            return value in seen.name.lower()
        actual = {"client": f.client, "server": f.server, "cport": str(f.client_port), "sport": str(f.server_port),
                  "transport": f.transport, "protocol": v.protocol or "", "rule": v.rule or "",
                  "action": v.action}[self.key]
        return actual.lower() == value


def parse_filter(texts: list[str]) -> list[Term]:
    """``["client=10.0.0.11 port=80", "tls"]`` -> terms, all of which must match."""
    terms = []
    for text in texts:
        for word in text.split():
            key, eq, value = word.partition("=")
            if not eq:
                terms.append(Term(None, word))
                continue
            if key not in FIELDS or not value:
                raise TunnelwallError(f"--flow '{word}': write KEY=VALUE with KEY one of {', '.join(FIELDS)}, "
                                      "or a bare word to match anywhere")
            terms.append(Term(key, value))
    return terms


def matches(terms: list[Term], seen: SeenVerdict) -> bool:
    return all(t.matches(seen) for t in terms)


class ApiSource:
    """The controller's recent verdicts, newer than the last one seen."""

    def __init__(self, api, step_timeout: float):
        self.api, self.step_timeout, self.since = api, step_timeout, 0.0

    def fetch(self) -> list[SeenVerdict]:
        records = self.api.call(f"/api/verdicts?since={self.since}", timeout=self.step_timeout)
        out = [s for s in map(SeenVerdict.from_record, records) if s]
        if out:
            self.since = max(self.since, max(s.time for s in out))
        return out


class LogSource:
    """A verdict log, read from where the last read stopped (whole lines only)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0
        if not path.exists():
            raise TunnelwallError(f"verdicts: no verdict log {path}")

    def fetch(self) -> list[SeenVerdict]:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1          # a line still being written waits for the next read
        self.offset += end
        out = []
        for number, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                seen = SeenVerdict.from_record(json.loads(line))
            except (ValueError, KeyError, TypeError) as err:
                raise TunnelwallError(f"{self.path}: a line that is not a verdict record ({err})") from None
            if seen:
                out.append(seen)
        return out


def follow(source, interval: float, until=None):
    """Yield verdicts as they arrive, polling every *interval* seconds; each
    poll is bounded by the source's own timeout. *until* (a callable) ends it."""
    while until is None or not until():
        yield from source.fetch()
        time.sleep(interval)
