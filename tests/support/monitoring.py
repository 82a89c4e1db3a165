"""The operations files under ops/ as tests read them: the Grafana dashboards' panel queries with their
template variables substituted, the alerting rules' expressions, and the metric names the services export
(so that a query naming a metric no service has fails a fast test, not a dashboard in production)."""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
DASHBOARDS = OPS / "grafana" / "dashboards"
RULES = OPS / "prometheus" / "rules"
RULE_TESTS = OPS / "prometheus" / "tests"
PROMETHEUS_CONFIG = OPS / "prometheus" / "prometheus.yml"

# What Grafana fills in itself; a test gives them values that fit its Prometheus.
GRAFANA_BUILTINS = frozenset({"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"})
# $name, ${name} and ${name:format}, and the old [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
# Metric names as queries use them (Prometheus' own `up` aside, ours all have one of these prefixes).
_METRIC_NAME = re.compile(r"\b((?:aperture|rabbitmq)_[a-zA-Z0-9_]+)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def all_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows included; rows themselves too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(dashboard["uid"], panel.get("title", ""), target.get("refId", ""), target.get("expr", ""))
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variables_used(text: str) -> set[str]:
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(text)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """The query as Grafana sends it, with `values` for the variables; KeyError names one without a value."""

    def value_of(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values[name]

    return _VARIABLE.sub(value_of, expr)


def label_values_query(variable: Mapping[str, Any]) -> tuple[str, str]:
    """(metric, label) of a query variable defined as label_values(metric, label)."""
    definition = variable["definition"]
    match = re.fullmatch(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)", definition)
    assert match, f"variable {variable['name']}: not a label_values(metric, label) query: {definition}"
    return match.group(1), match.group(2)


def alerting_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def metric_names_in(expr: str) -> set[str]:
    return set(_METRIC_NAME.findall(expr))


def exported_metric_names() -> set[str]:
    """Every series name Aperture's services export (with the suffixes Prometheus sees: _total, _bucket,
    _sum, _count) and those of RabbitMQ's plugin that the queries use (queue_coarse_metrics)."""
    from aperture_coordinator import api_metrics
    from aperture_coordinator import metrics as coordinator_metrics
    from aperture_shared import metrics as shared_metrics
    from prometheus_client.metrics import MetricWrapperBase

    names: set[str] = set()
    for module in (shared_metrics, coordinator_metrics, api_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                names.update(_series_names(value._name, value._type or ""))
    for family in coordinator_metrics.DatabaseStateCollector(database=None).describe():  # type: ignore[arg-type]
        names.update(_series_names(family.name, family.type))
    names.update(
        f"rabbitmq_detailed_queue_{name}"
        for name in ("messages_ready", "messages_unacked", "messages", "process_reductions_total")
    )
    return names


def _series_names(name: str, kind: str) -> set[str]:
    if kind == "counter":
        return {f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return {name}
