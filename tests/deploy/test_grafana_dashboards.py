"""The Grafana dashboards (ops/grafana/dashboards) and their provisioning, checked without Grafana: the
JSON is a dashboard Grafana loads (unique ids, panels on the 24-column grid without overlaps, every
query on the dashboard's Prometheus datasource variable, every template variable defined), every
panel's query is valid PromQL to promtool once its variables are filled in, and names only metrics the
services export. tests/system/test_metrics_dashboards.py runs every query against a real run.
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
