"""``python -m plugrad.conformance --backend NAME``: certify a backend plugin."""
from __future__ import annotations

import sys

from plugrad.conformance.cli import main

if __name__ == "__main__":
    sys.exit(main())
