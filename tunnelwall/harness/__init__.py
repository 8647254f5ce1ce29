"""The circumvention harness: real tools through the censor, and reports.

``spec``    tool definitions (YAML, one file per tool; built-ins in tunnelwall/tools)
``runner``  runs one tool on a running topology and judges the outcome
``report``  terminal table, JSON, JUnit XML, HTML with a chart
``verify``  the ``tunnelwall verify`` matrix (profiles x tools)
``fixtures`` the pytest plugin's fixtures for tool authors
"""
