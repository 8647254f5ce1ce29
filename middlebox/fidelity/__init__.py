"""Published test vectors of real censors, as byte builders with their
published outcomes: what a profile is checked against (issue 28's
``tunnelwall fidelity``). One module per source; each exposes ``VECTORS``.
"""
