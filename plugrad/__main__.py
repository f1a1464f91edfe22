"""``plugrad`` console script and ``python -m plugrad``."""
from __future__ import annotations

import sys

from plugrad.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
