"""The ``tunnelwall`` command. ``main`` wires the verbs; each verb module
here only parses arguments and calls the layer that does the work."""

from tunnelwall.cli.main import main

__all__ = ["main"]
