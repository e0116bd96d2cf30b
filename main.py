"""Doppel: `python main.py` starts the desktop app; `python main.py --help` lists the commands."""

import sys

from app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
