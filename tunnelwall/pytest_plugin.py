"""pytest plugin for tool authors (entry point ``pytest11``); fixtures are
defined in :mod:`tunnelwall.harness.fixtures` and re-exported here."""

try:
    from tunnelwall.harness.fixtures import *  # noqa: F401,F403
except ModuleNotFoundError as err:  # the harness package is optional for the plugin to load
    if not (err.name or "").startswith("tunnelwall.harness"):
        raise
