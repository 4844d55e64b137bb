"""``python -m rfsym``: the command line (the same as the ``rfsym`` command)."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised by tests/test_summary.py in a subprocess
    sys.exit(main())
