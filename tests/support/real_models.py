"""The real SCRFD detector as a catalog entry and store: it lives in tools/ (the benchmark uses it too)."""

from tools.real_models import REAL_SCRFD_ID, real_scrfd_store

__all__ = ["REAL_SCRFD_ID", "real_scrfd_store"]
