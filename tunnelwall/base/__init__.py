"""The base layer: what every other part of tunnelwall may use, and which
uses nothing of tunnelwall's own.

- ``errors``   one-line user errors (``FILE:LINE: message``)
- ``yamlsrc``  YAML with line numbers, JSON Schema validation mapped to lines
- ``units``    bandwidths and other units in YAML values
- ``dnsmsg``   DNS queries and answers on the wire
- ``runstate`` a run's recorded resources (what cleanup may remove)
- ``procs``    spawning and ending processes in node namespaces, by PID
"""
