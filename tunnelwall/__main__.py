"""``python -m tunnelwall`` = the ``tunnelwall`` command."""

import sys

from tunnelwall.cli.main import main

sys.exit(main())
