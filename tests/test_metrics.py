"""The metrics module: the reload hook, and the dashboard's queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from extproc.metrics import Metrics

DASHBOARD = Path(__file__).parents[1] / "deploy" / "grafana" / "extproc-dashboard.json"
# Suffixes Prometheus adds to a family's samples.
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def exported_names(metrics: Metrics) -> set[str]:
    """Every sample name the registry can expose, suffixes included."""
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES)
    return names


def test_rules_reloaded_counts_by_outcome() -> None:
    """The watcher's hook counts accepted and refused reloads apart."""
    metrics = Metrics()

    metrics.rules_reloaded(True)
    metrics.rules_reloaded(True)
    metrics.rules_reloaded(False)

    registry = metrics.registry
    assert (2.0, 1.0) == (
        registry.get_sample_value("extproc_rule_reloads_total", {"outcome": "ok"}),
        registry.get_sample_value("extproc_rule_reloads_total", {"outcome": "failed"}),
    )


def test_every_dashboard_query_uses_exported_metrics() -> None:
    """Each metric a dashboard panel queries is one the sidecar exports."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queried = {name for e in exprs for name in re.findall(r"\bextproc_\w+", e)}

    assert set() == queried - exported_names(Metrics())
    assert 12 == len(dashboard["panels"])


def test_every_exported_metric_has_a_panel() -> None:
    """No exported family is left off the dashboard."""
    text = DASHBOARD.read_text()
    families = {family.name for family in Metrics().registry.collect()}

    assert set() == {name for name in families if name not in text}


def test_registries_are_per_instance() -> None:
    """Two sidecars in one process keep separate counts."""
    first, second = Metrics(), Metrics()

    first.call("admitted", 200)

    assert b'decision="admitted"' in generate_latest(first.registry)
    assert b'decision="admitted"' not in generate_latest(second.registry)
