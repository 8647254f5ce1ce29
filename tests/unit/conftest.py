import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402

from tunnelwall.middlebox import budget  # noqa: E402


@pytest.fixture(autouse=True)
def unmetered_parsers():
    """An engine meters the parsers' work per packet (middlebox/budget.py);
    a test that parses directly afterwards starts unmetered again."""
    budget.stop()
    yield
    budget.stop()
