"""Media: image and video sources and sinks (PyAV), hardware decode and encode, audio."""
