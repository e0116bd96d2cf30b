"""The pipeline: what turns sources and a target into an output — per-frame swapping, presets, jobs."""
