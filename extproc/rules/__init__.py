"""Consumers and quota rules: the schema, the loader and the active snapshot."""

from extproc.rules.model import (
    ApiKey,
    Consumer,
    FailurePolicy,
    LimitType,
    QuotaRule,
    RuleSet,
)

__all__ = [
    "ApiKey",
    "Consumer",
    "FailurePolicy",
    "LimitType",
    "QuotaRule",
    "RuleSet",
]
