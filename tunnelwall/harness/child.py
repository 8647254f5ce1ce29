"""A child process that runs part of the verify matrix and prints its
results document: ``python -m tunnelwall.harness.child OPTIONS_JSON``
(OPTIONS_JSON: :meth:`VerifyOptions.as_dict`, from
:func:`tunnelwall.harness.verify.child_argv`).

``verify --jobs`` and the cluster's tasks start it: each part needs a
process of its own (its own testbed, torn down on SIGTERM), but not the
command line, which is the layer above the harness. Progress goes to
stderr, the document (results.schema.json) to stdout; an error is one line
on stderr and the error's exit code.
"""

from __future__ import annotations

import json
import sys
import time

from tunnelwall.base.errors import TunnelwallError, json_child


def main(argv: list[str] | None = None) -> int:
    from tunnelwall.harness.verify import VerifyOptions, document, verify
    argv = sys.argv[1:] if argv is None else argv

    def work():
        if len(argv) != 1:
            raise TunnelwallError("usage: python -m tunnelwall.harness.child OPTIONS_JSON")
        try:
            opts = VerifyOptions.from_dict(json.loads(argv[0]))
        except (ValueError, TypeError) as err:
            raise TunnelwallError(f"child: options are not VerifyOptions JSON ({err})") from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        t0 = time.monotonic()
        results = verify(opts)
        return document(results, opts, started, time.monotonic() - t0)
    return json_child(work)


if __name__ == "__main__":
    sys.exit(main())
