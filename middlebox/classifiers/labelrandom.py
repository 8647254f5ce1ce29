"""Does a DNS label look random? A likelihood-ratio test for Tor's names.

Little-t tor names a made-up server in its ClientHello: ``www.`` + a random
base32 string (letters a-z and digits 2-7) + ``.com``. The *shape* alone
(``www.[a-z2-7]{4,25}.com``) also fits ``www.example.com`` and
``www.bing.com``; nDPI for this reason also asks that the name look random.
This module asks it as a statistical test of its own:

* model R: every character drawn uniformly from tor's 32 (log P = -n ln 32);
* model E: English spelling, a letter-pair (bigram) chain fitted to 73,445
  English words (``english_bigrams``, Debian's wamerican; add-half
  smoothing), where a digit comes with probability 0.02 after any character
  and is followed by any letter as a word's first letter would be.

The score is ln P_R(label) - ln P_E(label) in nats: how much better random
draws explain the label than English spelling does. A random label gains
about 1.5 nats a character; words and names built from words score below 0.

The threshold (10 nats, labels of at least 8 characters) was fixed on a
half split of the word list before any hostname was scored: with the chain
fitted to one half, none of the 36,061 words of 4-25 letters of the other
half reached it, and 90.5 % of tor-style labels of 8-25 characters did
(74 % of all tor labels, whose length is uniform over 4-25). Shorter labels
are not judged random at all: acronyms (``cnbc``, ``bfmtv``) score like
random strings, and a 4-7 character label holds too little evidence. The
ClientHello test in :mod:`.tls` covers those for the tor builds it knows.
"""

from __future__ import annotations

import math
from functools import lru_cache

from .english_bigrams import PAIRS

LETTERS = "abcdefghijklmnopqrstuvwxyz"
BASE32 = frozenset(LETTERS + "234567")
THRESHOLD_NATS = 10.0
MIN_LENGTH = 8
DIGIT_CHANCE = 0.02          # a digit after any character, in model E
_SMOOTH = 0.5


def _row_totals() -> dict[str, int]:
    totals: dict[str, int] = {}
    for pair, count in PAIRS.items():
        totals[pair[0]] = totals.get(pair[0], 0) + count
    return totals


_TOTALS = _row_totals()


@lru_cache(maxsize=None)
def _log_english(prev: str, char: str) -> float:
    if char.isdigit():
        return math.log(DIGIT_CHANCE / 10)
    if prev.isdigit():
        prev = "^"                             # after a digit, letters start afresh
    count = PAIRS.get(prev + char, 0)
    return math.log(1 - DIGIT_CHANCE) + math.log((count + _SMOOTH) / (_TOTALS.get(prev, 0) + _SMOOTH * 26))


def randomness_score(label: str) -> float:
    """ln P(label | uniform base32) - ln P(label | English spelling), in nats.
    Characters outside a-z and 0-9 make the label non-random (-inf): tor's
    alphabet has none."""
    label = label.lower()
    if not label or any(c not in LETTERS and not c.isdigit() for c in label):
        return -math.inf
    text = "^" + label
    english = sum(_log_english(a, b) for a, b in zip(text, text[1:]))
    return -len(label) * math.log(32) - english


def looks_random(label: str) -> bool:
    """A label tor could have drawn (base32 only) that random draws explain
    far better than English spelling does (see the module's docstring)."""
    return (len(label) >= MIN_LENGTH and set(label) <= BASE32
            and randomness_score(label) >= THRESHOLD_NATS)
