import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402

from tunnelwall.base import runstate  # noqa: E402
from tunnelwall.middlebox import budget  # noqa: E402


@pytest.fixture(autouse=True)
def unmetered_parsers():
    """An engine meters the parsers' work per packet (middlebox/budget.py);
    a test that parses directly afterwards starts unmetered again."""
    budget.stop()
    yield
    budget.stop()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Run state and logs in a temporary folder, no run chosen by the environment."""
    monkeypatch.setattr(runstate, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(runstate, "LOG_ROOT", tmp_path / "logs")
    monkeypatch.delenv("TUNNELWALL_RUN", raising=False)
    return tmp_path
