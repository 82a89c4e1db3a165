"""The Prometheus alerting rules (ops/prometheus/rules) and the Compose stack's Prometheus configuration:
promtool accepts them, promtool's unit tests of every alert pass, and the rules query only metrics that
the services export.

Tool: promtool, from Debian's `prometheus` package (`tools/stack/install.sh --monitoring`). Missing, it
skips these tests locally and fails them under CI=true.
"""

import subprocess
from pathlib import Path

import pytest
import yaml
from support.monitoring import (
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    alerting_rules,
    exported_metric_names,
    metric_names_in,
)
from support.requirements import find_tool


@pytest.fixture(scope="module")
def promtool() -> str:
    return find_tool("promtool", "tools/stack/install.sh --monitoring installs Debian's prometheus package")


def run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rules(promtool: str) -> None:
    files = sorted(RULES.glob("*.yml"))
    assert files

    result = run(promtool, "check", "rules", *files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_of_the_alerts_pass(promtool: str) -> None:
    files = sorted(RULE_TESTS.glob("*.yml"))
    assert files

    result = run(promtool, "test", "rules", *files)

    assert result.returncode == 0, result.stdout + result.stderr


LOCAL_CONFIG = PROMETHEUS_CONFIG.with_name("prometheus.local.yml")


@pytest.mark.parametrize("config", [PROMETHEUS_CONFIG, LOCAL_CONFIG], ids=lambda path: path.name)
def test_promtool_accepts_the_prometheus_configurations(promtool: str, config: Path) -> None:
    result = run(promtool, "check", "config", config)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_stacks_configuration_has_the_compose_stacks_jobs_and_labels() -> None:
    def jobs(config: Path) -> dict[str, set[tuple[tuple[str, str], ...]]]:
        # Label sets, not targets: compose also runs a large-memory imaging worker, labelled as imaging.
        scrape_configs = yaml.safe_load(config.read_text())["scrape_configs"]
        return {
            job["job_name"]: {tuple(sorted(static.get("labels", {}).items())) for static in job["static_configs"]}
            for job in scrape_configs
        }

    assert jobs(LOCAL_CONFIG) == jobs(PROMETHEUS_CONFIG)
    assert set(jobs(PROMETHEUS_CONFIG)) == {"aperture-coordinator", "aperture-worker", "rabbitmq"}


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    firing: set[str] = set()
    for path in RULE_TESTS.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    firing.add(check["alertname"])

    alerts = {rule["alert"] for rule in alerting_rules() if "alert" in rule}

    assert {"ApertureServiceDown", "ApertureMousStuck", "ApertureBacklogGrowing", "ApertureDeadLetters",
            "ApertureQaMostlyRed"} <= alerts
    assert alerts - firing == set()


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule.get("alert", rule.get("record")))
def test_every_alert_says_how_bad_and_what_it_means(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_query_only_metrics_the_services_export() -> None:
    exported = exported_metric_names()

    used = {name for rule in alerting_rules() for name in metric_names_in(rule["expr"])}

    assert used and used - exported == set()
