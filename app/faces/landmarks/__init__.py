"""Dense landmarkers: one module per family behind the LandmarkerFamily contract (base.py)."""
