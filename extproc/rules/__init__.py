"""Consumers, quota rules and rate limits: schema, loader and active snapshot."""

from extproc.rules.model import (
    ApiKey,
    Consumer,
    FailurePolicy,
    LimitType,
    Mode,
    QuotaRule,
    RateLimit,
    RateMeasure,
    RateUnit,
    RuleSet,
)

__all__ = [
    "ApiKey",
    "Consumer",
    "FailurePolicy",
    "LimitType",
    "Mode",
    "QuotaRule",
    "RateLimit",
    "RateMeasure",
    "RateUnit",
    "RuleSet",
]
