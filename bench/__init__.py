"""Benchmark: what the sidecar costs each call (`make bench`)."""
