"""The dashboards and alerting rules against a real run: a real Prometheus (Debian's) scrapes the
coordinator, one worker per stage and RabbitMQ's plugin every second while the demo MOUS goes through the
whole chain; then every panel query of every dashboard (its variables filled in with this run's values)
must return data with a finite value, the variables must offer this run's stage and MOUS, the counters
must agree with what the API says happened, and the alerting rules must load and evaluate with none
firing."""

import math
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
import yaml
from aperture_contracts.enums import JobState, MousState, Stage
from support.monitoring import RULES, label_values_query, load_dashboards, panel_queries, substitute
from support.processes import free_port
from support.requirements import find_tool, require

pytestmark = [pytest.mark.integration, pytest.mark.casa, pytest.mark.slow]

STAGES = [stage.value for stage in Stage]
SCRAPE_INTERVAL_S = 1
RABBITMQ_METRICS = "127.0.0.1:15692"


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **fields: Any) -> Any:
        response = urllib3.request("GET", f"{self.url}{path}", fields=fields, timeout=30)
        body = response.json()
        assert response.status == 200 and body["status"] == "success", (path, fields, body)
        return body["data"]

    def range_query(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self.get("/api/v1/query_range", query=expr, start=start, end=end, step=SCRAPE_INTERVAL_S)["result"]

    def value_at(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr, time=at)["result"]


def scrape_config(coordinator_port: int, workers: dict[str, int], vhost: str) -> dict[str, Any]:
    """The layout of ops/prometheus/prometheus.yml (job names, the workers' stage label) on this run's ports."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [
            {"job_name": "aperture-coordinator", "static_configs": [{"targets": [f"127.0.0.1:{coordinator_port}"]}]},
            {"job_name": "aperture-worker", "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"stage": stage}} for stage, port in workers.items()
            ]},
            # The test's own virtual host only: the shared broker carries other tests' queues too.
            {"job_name": "rabbitmq", "metrics_path": "/metrics/detailed",
             "params": {"family": ["queue_coarse_metrics"], "vhost": [vhost]},
             "static_configs": [{"targets": [RABBITMQ_METRICS]}]},
        ],
    }


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Any]:
    binary = find_tool("prometheus", "tools/stack/install.sh --monitoring installs Debian's prometheus package")
    require(_port_open(RABBITMQ_METRICS), f"RabbitMQ's Prometheus plugin on {RABBITMQ_METRICS}")
    started: list[Prometheus] = []

    def start(config: dict[str, Any]) -> Prometheus:
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [binary, f"--config.file={config_file}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)
        started.append(prometheus)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if urllib3.request("GET", f"{prometheus.url}/-/ready", timeout=2, retries=False).status == 200:
                    return prometheus
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus not ready after 30 s:\n{log.read_text()}")

    yield start
    for prometheus in started:
        prometheus.process.terminate()
        prometheus.process.wait(20)


def _port_open(address: str) -> bool:
    host, port = address.split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def wait_for_targets_up(prometheus: Prometheus, expected: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        targets = prometheus.get("/api/v1/targets")["activeTargets"]
        if len(targets) == expected and all(target["health"] == "up" for target in targets):
            return
        time.sleep(0.5)
    raise AssertionError(f"not every target is up: {[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}")


def has_a_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(value)) for series in result for _at, value in series["values"])


def total(prometheus: Prometheus, expr: str, at: float) -> float:
    result = prometheus.value_at(expr, at)
    return sum(float(series["value"][1]) for series in result)


def test_every_dashboard_panel_shows_data_from_a_real_run(system, generated_mous, start_prometheus) -> None:
    began = time.monotonic()
    system.env["APERTURE_ENABLED_STAGES"] = ",".join(STAGES)
    system.start_coordinator()
    workers = {stage: urlsplit(system.start_worker(stage).health_url).port for stage in STAGES}
    vhost = system.env["APERTURE_AMQP_URL"].rsplit("/", 1)[1]
    prometheus = start_prometheus(scrape_config(int(system.env["APERTURE_API_PORT"]), workers, vhost))
    wait_for_targets_up(prometheus, expected=len(workers) + 2)
    services_ready = time.monotonic()
    start = time.time()

    with system.client() as client:
        mous_id = client.submit(generated_mous.package).summary.mous_id
        detail = client.wait(mous_id, timeout_s=600, poll_interval_s=1)
    assert detail.state is MousState.COMPLETED, (detail.reason, detail.errors)
    processed = time.monotonic()
    time.sleep(3 * SCRAPE_INTERVAL_S)  # the last state changes scraped, and the rules evaluated on them
    end = time.time()
    window = f"{math.ceil(end - start)}s"

    # Every panel query, with this run's stage and MOUS, returns data with a finite value.
    values = {"__rate_interval": f"{4 * SCRAPE_INTERVAL_S + 1}s", "__interval": f"{SCRAPE_INTERVAL_S}s",
              "__range": window, "stage": "imaging", "mous": mous_id}
    queries = [query for dashboard in load_dashboards().values() for query in panel_queries(dashboard)]
    empty = [
        f"{query.name}: {substitute(query.expr, values)}"
        for query in queries
        if not has_a_finite_value(prometheus.range_query(substitute(query.expr, values), start, end))
    ]
    assert empty == [], "panel queries without data:\n" + "\n".join(empty)

    # The template variables offer what this run had.
    for dashboard in load_dashboards().values():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                metric, label = label_values_query(variable)
                offered = prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": metric, "start": start,
                                                                           "end": end})
                assert values[variable["name"]] in offered, (variable["name"], offered)

    # The counters agree with what the API says happened.
    jobs_per_stage = {stage: 0 for stage in STAGES}
    for job in detail.jobs:
        assert job.state is JobState.SUCCEEDED
        jobs_per_stage[job.stage.value] += 1
    for stage, count in jobs_per_stage.items():
        counted = total(prometheus, f'aperture_jobs_total{{stage="{stage}", outcome="succeeded"}}', end)
        assert counted == count, (stage, counted, count)
        assert total(prometheus, f'aperture_jobs_started_total{{stage="{stage}"}}', end) == count
    assert total(prometheus, 'aperture_coordinator_mous{state="completed"}', end) == 1
    assert total(prometheus, "sum(aperture_inflight_mous_total)", end) == 0
    assert total(prometheus, f"max_over_time(aperture_queue_jobs{{stage='imaging'}}[{window}])", end) >= 1
    assert total(prometheus, 'aperture_casa_task_duration_seconds_count{stage="imaging", task="tclean"}', end) >= 1
    assert total(prometheus, "aperture_qa_score_count", end) >= 1
    detail_route = 'aperture_api_requests_total{route="/api/v1/mous/{mous_id:path}", status_class="2xx"}'
    assert total(prometheus, detail_route, end) >= 1
    assert total(prometheus, 'aperture_storage_bytes_total{direction="upload"}', end) > 0

    # The alerting rules loaded, evaluate without errors on real series, and none fires on a clean run.
    rules = [rule for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), [
        (rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
    ]
    firing = [alert for alert in prometheus.get("/api/v1/alerts")["alerts"] if alert["state"] == "firing"]
    assert firing == []
    print(
        f"{len(queries)} panel queries checked; services up in {services_ready - began:.0f} s, MOUS processed in "
        f"{processed - services_ready:.0f} s, checks in {time.monotonic() - processed:.0f} s"
    )
