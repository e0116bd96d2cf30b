"""The inference runtime: providers, sessions with I/O binding and fallback, the session pool, warmup,
TensorRT options and engine cache, and the CUDA-graph probe. Knows tensors and models, not faces."""
