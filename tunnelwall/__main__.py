"""``python -m tunnelwall`` = the ``tunnelwall`` command."""

import sys

from tunnelwall.cli import main

sys.exit(main())
