"""Face detector families, one module each, behind the DetectorFamily contract (base.py)."""
