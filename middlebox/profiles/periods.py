"""Whether a profile describes today's censor or a past one, from its
``period`` and a date.

A period is ``START..END`` (``2024-04..2025-12``), ``START..`` (still going),
or one date (``2020-02``: a measurement of that month). Dates are a year, a
month or a day, optionally with a time (``2025-08-20T01:48+08:00``), and may
be followed by a note in brackets. An end at month precision lasts to the
end of that month. Pure functions: the caller passes today's date.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

CURRENT, HISTORICAL, FUTURE, UNDATED = "current", "historical", "future", "undated"
_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def _first_day(text: str) -> date | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    return date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))


def _last_day(text: str) -> date | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    year = int(m.group(1))
    month = int(m.group(2) or 12)
    day = int(m.group(3) or calendar.monthrange(year, month)[1])
    return date(year, month, day)


def status(period: str, today: date) -> str:
    """current, historical, future (starts after *today*) or undated (no
    period, or one that is not dates)."""
    text = re.sub(r"\(.*\)", "", period or "").strip()
    if not text:
        return UNDATED
    start_text, sep, end_text = text.partition("..")
    start = _first_day(start_text)
    end = _last_day(end_text) if sep and end_text.strip() else (None if sep else _last_day(start_text))
    if start is None or (sep and end_text.strip() and end is None):
        return UNDATED
    if today < start:
        return FUTURE
    if end is not None and today > end:
        return HISTORICAL
    return CURRENT
