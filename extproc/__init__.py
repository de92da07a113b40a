"""Per-consumer token quotas for LLM traffic, enforced from an Envoy ext_proc."""

__version__ = "0.1.0"
