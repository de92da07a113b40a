"""Per-consumer token quotas for LLM traffic, enforced from an Envoy ext_proc sidecar."""

__version__ = "0.1.0"
