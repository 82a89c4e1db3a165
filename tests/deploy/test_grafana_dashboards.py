"""The Grafana dashboards (ops/grafana/dashboards) and their provisioning, checked without Grafana: the
JSON is a dashboard Grafana loads (unique ids, panels on the 24-column grid without overlaps, every
query on the dashboard's Prometheus datasource variable, every template variable defined), every
panel's query is valid PromQL to promtool once its variables are filled in, and names only metrics the
services export. The overview's Campaigns row is evaluated by promtool on made-up series, with and
without active campaigns. tests/system/test_metrics_dashboards.py runs every query against a real run.
"""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.monitoring import (
    DASHBOARDS,
    GRAFANA_BUILTINS,
    OPS,
    all_panels,
    exported_metric_names,
    label_values_query,
    load_dashboards,
    metric_names_in,
    panel_queries,
    substitute,
    variables_used,
)
from support.requirements import find_tool

DASHBOARD_FILES = load_dashboards()
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Values for promtool: any that make the queries what Grafana would send.
EXAMPLE_VALUES = {
    "__rate_interval": "1m", "__interval": "15s", "__range": "6h", "stage": "imaging", "mous": "uid://A001/X1/X2",
}


OVERVIEW = DASHBOARD_FILES["aperture-overview.json"]
CAMPAIGN_METRICS = {
    "aperture_campaign_members", "aperture_campaign_members_completed_total", "aperture_campaign_failed_members",
}


def defined_variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_there_are_the_overview_stage_and_mous_dashboards() -> None:
    uids = [dashboard["uid"] for dashboard in DASHBOARD_FILES.values()]

    assert sorted(uids) == ["aperture-mous", "aperture-overview", "aperture-stage"]
    assert len({dashboard["title"] for dashboard in DASHBOARD_FILES.values()}) == len(uids)


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_panels_have_unique_ids_and_tile_the_grid_without_overlap(name: str) -> None:
    panels = list(all_panels(DASHBOARD_FILES[name]))
    ids = [panel["id"] for panel in panels]
    occupied: dict[tuple[int, int], str] = {}

    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for column in range(grid["x"], grid["x"] + grid["w"]):
            for row in range(grid["y"], grid["y"] + grid["h"]):
                assert (column, row) not in occupied, f"{panel['title']} overlaps {occupied[(column, row)]}"
                occupied[(column, row)] = panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_every_query_uses_the_datasource_variable_and_has_a_unique_ref_id(name: str) -> None:
    dashboard = DASHBOARD_FILES[name]
    datasource = defined_variables(dashboard)["datasource"]

    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for panel in all_panels(dashboard):
        targets = panel.get("targets", [])
        if panel["type"] in ("row", "text"):
            assert not targets
            continue
        assert targets, f"{panel['title']} has no query"
        assert panel["datasource"] == PROMETHEUS_DATASOURCE, panel["title"]
        assert all(target["datasource"] == PROMETHEUS_DATASOURCE for target in targets), panel["title"]
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(target["expr"].strip() for target in targets), panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARD_FILES))
def test_every_variable_a_dashboard_uses_is_defined(name: str) -> None:
    dashboard = DASHBOARD_FILES[name]
    defined = set(defined_variables(dashboard)) | GRAFANA_BUILTINS
    texts = [query.expr for query in panel_queries(dashboard)]
    texts += [panel.get("title", "") for panel in all_panels(dashboard)]
    texts += [panel.get("options", {}).get("content", "") for panel in all_panels(dashboard)]

    used = set().union(*(variables_used(text) for text in texts))

    assert used - defined == set()


def test_the_query_variables_list_label_values_of_exported_metrics() -> None:
    exported = exported_metric_names()
    checked = 0
    for dashboard in DASHBOARD_FILES.values():
        for variable in defined_variables(dashboard).values():
            if variable["type"] != "query":
                continue
            metric, _label = label_values_query(variable)
            assert metric in exported, (dashboard["uid"], variable["name"])
            assert variable["datasource"] == PROMETHEUS_DATASOURCE
            checked += 1
    assert checked == 2  # stage, mous


def test_the_queries_name_only_metrics_the_services_export() -> None:
    exported = exported_metric_names()
    queries = [query for dashboard in DASHBOARD_FILES.values() for query in panel_queries(dashboard)]

    unknown = {query.name: metric_names_in(query.expr) - exported for query in queries}

    assert {name: names for name, names in unknown.items() if names} == {}


def test_promtool_accepts_every_panel_query(tmp_path: Path) -> None:
    promtool = find_tool("promtool", "tools/stack/install.sh --monitoring installs Debian's prometheus package")
    queries = [query for dashboard in DASHBOARD_FILES.values() for query in panel_queries(dashboard)]
    # A recording rule per query: `promtool check rules` parses each expression as Prometheus would.
    rules = [
        {"record": f"dashboard_query_{number}", "expr": substitute(query.expr, EXAMPLE_VALUES)}
        for number, query in enumerate(queries)
    ]
    rules_file = tmp_path / "dashboard-queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))

    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=120, check=False
    )

    assert len(queries) > 40
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard_folder() -> None:
    provisioning = OPS / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "aperture.yml").read_text())["providers"]

    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"
    assert sorted(path.name for path in DASHBOARDS.glob("*.json")) == sorted(DASHBOARD_FILES)


# -- the overview's campaign panels ------------------------------------------------------------------


def row_queries(dashboard: dict[str, Any], row_title: str) -> dict[str, str]:
    """The query of each panel of a row (panels follow their row until the next one), by panel title."""
    queries: dict[str, str] = {}
    in_row = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            in_row = panel["title"] == row_title
        elif in_row:
            (target,) = panel["targets"]
            queries[panel["title"]] = target["expr"]
    return queries


CAMPAIGN_QUERIES = row_queries(OVERVIEW, "Campaigns")
# Two campaigns scraped every 5 minutes for an hour: cycle10 completes 2 MOUS every 5 minutes and has 4
# failures of two classes; survey has just begun. Both as the coordinator exports them (DatabaseStateCollector).
SCRAPED = {"job": "aperture-coordinator", "instance": "coordinator:8000"}
CAMPAIGN_SERIES = {
    ("aperture_campaign_members", "cycle10", "pending"): "40-2x12",
    ("aperture_campaign_members", "cycle10", "submitted"): "4x12",
    ("aperture_campaign_members", "cycle10", "completed"): "0+2x12",
    ("aperture_campaign_members", "cycle10", "failed"): "4x12",
    ("aperture_campaign_members", "cycle10", "cancelled"): "0x12",
    ("aperture_campaign_members", "survey", "pending"): "5x12",
    ("aperture_campaign_members", "survey", "submitted"): "0x12",
    ("aperture_campaign_members", "survey", "completed"): "0x12",
    ("aperture_campaign_members", "survey", "failed"): "0x12",
    ("aperture_campaign_members", "survey", "cancelled"): "0x12",
    ("aperture_campaign_members_completed_total", "cycle10", None): "0+2x12",
    ("aperture_campaign_members_completed_total", "survey", None): "0x12",
    ("aperture_campaign_failed_members", "cycle10", "timeout"): "3x12",
    ("aperture_campaign_failed_members", "cycle10", "bad_input"): "1x12",
}
MEMBERS_AN_HOUR_IN = {
    "cycle10": {"pending": 16, "submitted": 4, "completed": 24, "failed": 4, "cancelled": 0},
    "survey": {"pending": 5, "submitted": 0, "completed": 0, "failed": 0, "cancelled": 0},
}
# What each panel shows an hour in: with those campaigns, and with none (0, named, rather than no data).
Samples = list[tuple[dict[str, str], float]]
WITH_CAMPAIGNS: dict[str, Samples] = {
    "Campaigns active": [({}, 2)],
    "Campaign members pending": [({}, 16 + 5)],
    "Campaign members in flight": [({}, 4)],
    "Campaign MOUS completed in the last hour": [({}, 24)],
    "Campaign members by state": [
        ({"campaign": campaign, "state": state}, count)
        for campaign, members in MEMBERS_AN_HOUR_IN.items()
        for state, count in members.items()
    ],
    "Campaign throughput: MOUS completed per hour": [({"campaign": "cycle10"}, 24), ({"campaign": "survey"}, 0)],
    "Failed campaign members, by campaign and error class": [
        ({"campaign": "cycle10", "error_class": "timeout"}, 3),
        ({"campaign": "cycle10", "error_class": "bad_input"}, 1),
    ],
    "Failed campaign members now, by error class": [({"error_class": "timeout"}, 3), ({"error_class": "bad_input"}, 1)],
}
WITHOUT_CAMPAIGNS: dict[str, Samples] = {
    "Campaigns active": [({}, 0)],
    "Campaign members pending": [({}, 0)],
    "Campaign members in flight": [({}, 0)],
    "Campaign MOUS completed in the last hour": [({}, 0)],
    "Campaign members by state": [({"campaign": "no active campaign"}, 0)],
    "Campaign throughput: MOUS completed per hour": [({"campaign": "no active campaign"}, 0)],
    "Failed campaign members, by campaign and error class": [({"error_class": "no failures"}, 0)],
    "Failed campaign members now, by error class": [({"error_class": "no failures"}, 0)],
}


SECOND_LABEL = {"aperture_campaign_members": "state", "aperture_campaign_failed_members": "error_class"}


def series_name(metric: str, campaign: str, second_label: str | None) -> str:
    labels = SCRAPED | {"campaign": campaign}
    if second_label is not None:
        labels[SECOND_LABEL[metric]] = second_label
    return metric + label_set(labels)


def label_set(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{name}="{value}"' for name, value in sorted(labels.items())) + "}"


def expression_tests(expected: dict[str, Samples]) -> list[dict[str, Any]]:
    return [
        {"expr": CAMPAIGN_QUERIES[title], "eval_time": "1h",
         "exp_samples": [{"labels": label_set(labels), "value": value} for labels, value in samples]}
        for title, samples in expected.items()
    ]


def test_the_overview_has_a_campaigns_row_of_members_throughput_and_failures() -> None:
    used = set().union(*(metric_names_in(expr) for expr in CAMPAIGN_QUERIES.values()))

    assert set(CAMPAIGN_QUERIES) == set(WITH_CAMPAIGNS) == set(WITHOUT_CAMPAIGNS)
    assert used == CAMPAIGN_METRICS
    assert CAMPAIGN_METRICS <= exported_metric_names()
    assert "sum by (campaign, state) (aperture_campaign_members)" in CAMPAIGN_QUERIES["Campaign members by state"]
    throughput = CAMPAIGN_QUERIES["Campaign throughput: MOUS completed per hour"]
    assert "increase(aperture_campaign_members_completed_total[1h])" in throughput


def test_the_campaign_panels_show_what_the_campaigns_did_and_zero_without_campaigns(tmp_path: Path) -> None:
    promtool = find_tool("promtool", "tools/stack/install.sh --monitoring installs Debian's prometheus package")
    unrelated = {"series": "up" + label_set(SCRAPED), "values": "1x12"}
    campaigns = [{"series": series_name(*key), "values": values} for key, values in CAMPAIGN_SERIES.items()]
    tests = [
        {"name": "two active campaigns", "interval": "5m", "input_series": [unrelated, *campaigns],
         "promql_expr_test": expression_tests(WITH_CAMPAIGNS)},
        {"name": "no active campaign", "interval": "5m", "input_series": [unrelated],
         "promql_expr_test": expression_tests(WITHOUT_CAMPAIGNS)},
    ]
    test_file = tmp_path / "campaign-panels.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}))

    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
