"""PyInstaller's script for ``county-center`` (the console script ``sync.server.cli:main``)."""

import sys

from sync.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
