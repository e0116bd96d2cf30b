"""Warm models and print their timings: the same as `python main.py warmup [ID ...] [options]`.

python tools/warmup.py inswapper_128 arcface_w600k_r50 --runs 20
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["warmup", *sys.argv[1:]]))
