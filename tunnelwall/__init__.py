"""tunnelwall: a network testbed with an emulated censoring firewall.

Everything installs under this one name; in the repository the three
lower packages keep their own folders at the root, where people look for
them. Dependencies point one way (tests/unit/test_layers.py checks it):

- ``tunnelwall.base``        errors, YAML with line numbers, units, DNS wire
                             format, run state, processes. Imports nothing of
                             tunnelwall's own.
- ``tunnelwall.topologies``  (folder ``topologies/``) YAML catalogue, parser ->
                             model, Mininet backend, container nodes.
- ``tunnelwall.middlebox``   (folder ``middlebox/``) packet parsing, flows,
                             one classifier per protocol, censor profiles, the
                             live middlebox daemon, the prober.
- ``tunnelwall.controller``  (folder ``controller/``) the OpenFlow 1.3 app
                             (os-ken) that turns verdicts into flow rules.
- ``tunnelwall.runtime``, ``services``, ``harness``, ``classroom``, ``cli``:
  bringing runs up and down, the outside world's servers, the circumvention
  harness and its reports, exercises, and the command line.
"""

__version__ = "0.2.0"
