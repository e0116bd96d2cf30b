"""Boundary types, settings, errors and logging shared by every package (no Qt, no onnxruntime)."""
