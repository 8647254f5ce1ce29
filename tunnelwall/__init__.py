"""tunnelwall: a network testbed with an emulated censoring firewall.

Package map (the architecture, one package per concern):

- ``topologies``  YAML catalogue, parser -> model, Mininet backend.
- ``middlebox``   packet parsing, flow tracking, one classifier per protocol,
                  censor profiles, the live middlebox daemon.
- ``controller``  the OpenFlow 1.3 app (os-ken) that turns verdicts into flow rules.
- ``tunnelwall``  what ties them together: run state and cleanup, daemons,
                  the CLI, the circumvention harness and its reports.
"""

__version__ = "0.1.0"
