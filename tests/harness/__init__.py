"""Real parts for tests: Redis and Envoy processes, the sidecar, a fake provider.

Everything listens on free loopback ports, so test runs never collide.
"""
