"""PyInstaller's script for ``station`` (the console script ``station.cli.main:main``)."""

import sys

from station.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
