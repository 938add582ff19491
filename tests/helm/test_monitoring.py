"""Alert rules, dashboards and the prometheus-adapter rule: structure, and metric names."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .chart import CHART_DIR, HELM_DIR, NAMESPACE, SCENARIOS, fullname, load_values, render, require_module
from .promql import grafana_variable_metric_names, metric_names

EXPORTED_METRICS_FILE = Path(__file__).with_name("exported_metrics.txt")
DASHBOARD_FILES = sorted((CHART_DIR / "dashboards").glob("*.json"))
ADAPTER_RULES_FILE = CHART_DIR / "files" / "prometheus-adapter-rules.yaml"


def exported_metrics() -> set[str]:
    lines = EXPORTED_METRICS_FILE.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def rules(scenario: str) -> list[dict]:
    return [
        rule
        for doc in render(scenario).of_kind("PrometheusRule")
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
    ]


def alerts(scenario: str) -> list[dict]:
    return [rule for rule in rules(scenario) if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for scenario in SCENARIOS for rule in rules(scenario) if "record" in rule}


def _walk_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict) -> tuple[list[str], list[str]]:
    """(panel target expressions, variable queries) of a Grafana dashboard."""
    exprs = [
        target["expr"]
        for panel in _walk_panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    variable_queries = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        variable_queries.append(query["query"] if isinstance(query, dict) else query)
    return exprs, variable_queries


def adapter_queries() -> list[str]:
    yaml = require_module("yaml")
    config = yaml.safe_load(ADAPTER_RULES_FILE.read_text())
    queries = []
    for rule in config["rules"]["custom"]:
        queries += [rule["seriesQuery"], rule["metricsQuery"]]
    return queries


def used_metric_names() -> dict[str, set[str]]:
    """Every metric name a PromQL expression of the chart reads, with where it is read."""
    used: dict[str, set[str]] = {}

    def note(names: set[str], source: str) -> None:
        for name in names:
            used.setdefault(name, set()).add(source)

    for scenario in SCENARIOS:
        for rule in rules(scenario):
            note(metric_names(rule["expr"]), f"PrometheusRule ({scenario}) {rule.get('alert') or rule.get('record')}")
    for path in DASHBOARD_FILES:
        exprs, variable_queries = dashboard_queries(json.loads(path.read_text()))
        for expr in exprs:
            note(metric_names(expr), f"dashboard {path.name}")
        for query in variable_queries:
            note(grafana_variable_metric_names(query), f"dashboard {path.name} variable")
    for query in adapter_queries():
        note(metric_names(query), ADAPTER_RULES_FILE.name)
    return used


def test_exported_metrics_file_is_sorted_and_unique() -> None:
    names = [line for line in EXPORTED_METRICS_FILE.read_text().splitlines() if line and not line.startswith("#")]
    assert names == sorted(set(names))
    assert all(re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name) for name in names)


def test_every_promql_metric_is_exported() -> None:
    used = used_metric_names()
    recorded = recorded_names()
    metrics = set(used) - recorded
    assert len(metrics) >= 20, f"suspiciously few metrics found: {sorted(metrics)}"
    missing = {name: sorted(used[name]) for name in sorted(metrics - exported_metrics())}
    assert not missing, "PromQL reads metrics that neither the gateway nor Triton export:\n" + "\n".join(
        f"  {name}: {', '.join(sources)}" for name, sources in missing.items()
    )


def test_recorded_series_that_are_read_are_defined() -> None:
    used = used_metric_names()
    undefined = {name for name in used if ":" in name} - recorded_names()
    assert not undefined, f"expressions read recording rules the chart does not define: {sorted(undefined)}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rule_selectors_stay_inside_the_release(scenario: str) -> None:
    selectors = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}")
    jobs = {f'job="{fullname("gateway")}"', f'job="{fullname("triton")}"'}
    for rule in rules(scenario):
        found = selectors.findall(rule["expr"])
        assert found, f"{rule}: no label matchers"
        for metric, matchers in found:
            where = f"{metric} in {rule['expr']!r}"
            assert f'namespace="{NAMESPACE}"' in matchers, f"{where} is not scoped to the namespace"
            assert any(job in matchers for job in jobs), f"{metric} in {rule['expr']!r} is not scoped to a job"


REQUIRED_ALERTS = {
    "ImageserveAvailabilityBudgetBurn",
    "ImageserveLatencyBudgetBurn",
    "ImageserveTritonQueueTimeHigh",
    "ImageserveTritonSaturated",
    "ImageserveGatewaySaturated",
    "ImageserveTritonModelNotReady",
    "ImageserveLedgerWriteErrors",
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_required_alerts_exist(scenario: str) -> None:
    names = {alert["alert"] for alert in alerts(scenario)}
    assert REQUIRED_ALERTS <= names, f"missing: {sorted(REQUIRED_ALERTS - names)}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_burn_rate_alerts_use_multiple_window_pairs(scenario: str) -> None:
    for name, recorded in (
        ("ImageserveAvailabilityBudgetBurn", "imageserve:gateway_request_errors:ratio_rate"),
        ("ImageserveLatencyBudgetBurn", "imageserve:gateway_request_slow:ratio_rate"),
    ):
        burn = [alert for alert in alerts(scenario) if alert["alert"] == name]
        windows = set()
        for alert in burn:
            used = re.findall(re.escape(recorded) + r"(\w+)\{", alert["expr"])
            assert len(set(used)) == 2, f"{name} must compare a long and a short window: {alert['expr']}"
            assert " and " in alert["expr"].replace("\n", " ")
            windows.add(tuple(used))
        assert len(windows) >= 2, f"{name}: only {windows}"
        assert {alert["labels"]["severity"] for alert in burn} >= {"critical", "warning"}


def test_model_not_ready_alert_covers_every_model() -> None:
    models = load_values()["triton"]["models"]
    exprs = " ".join(alert["expr"] for alert in alerts("default") if alert["alert"] == "ImageserveTritonModelNotReady")
    for model in models:
        assert f'model="{model}"' in exprs


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_alerts_have_severity_summary_and_runbook(scenario: str) -> None:
    for alert in alerts(scenario):
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert
        annotations = alert["annotations"]
        assert annotations.get("summary") and annotations.get("description"), alert["alert"]
        assert annotations.get("runbook_url") or annotations.get("runbook"), alert["alert"]


def test_runbook_sections_exist_for_every_alert() -> None:
    readme = (HELM_DIR / "README.md").read_text()
    anchors = {match.lower() for match in re.findall(r"^#{3,4} (Imageserve\w+)", readme, flags=re.MULTILINE)}
    names = {alert["alert"].lower() for scenario in SCENARIOS for alert in alerts(scenario)}
    assert names <= anchors, f"helm/README.md lacks runbook sections for {sorted(names - anchors)}"


def test_gpu_alerts_only_with_gpu() -> None:
    for scenario in SCENARIOS:
        gpu = load_values(*SCENARIOS[scenario])["triton"]["gpu"]["enabled"]
        reads_gpu = any("nv_gpu_" in rule["expr"] for rule in rules(scenario))
        assert reads_gpu == gpu, scenario


# --- dashboards ----------------------------------------------------------------------------


def test_dashboards_are_the_generated_ones() -> None:
    spec = importlib.util.spec_from_file_location("generate_dashboards", HELM_DIR / "tools" / "generate_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert sorted(module.DASHBOARDS) == [path.name for path in DASHBOARD_FILES]
    for path in DASHBOARD_FILES:
        assert path.read_text() == module.render(path.name), (
            f"{path.name} differs from its generator: run .venv/bin/python helm/tools/generate_dashboards.py"
        )


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    panels = list(_walk_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "job"} <= variables
    exprs, _ = dashboard_queries(dashboard)
    for expr in exprs:
        assert 'namespace="$namespace"' in expr and 'job="$job"' in expr, expr


def _dashboard_metrics(name: str) -> set[str]:
    exprs, _ = dashboard_queries(json.loads((CHART_DIR / "dashboards" / name).read_text()))
    return set().union(*(metric_names(expr) for expr in exprs))


def _dashboard_exprs(name: str) -> str:
    exprs, _ = dashboard_queries(json.loads((CHART_DIR / "dashboards" / name).read_text()))
    return "\n".join(exprs)


def test_gateway_dashboard_covers_traffic_errors_latency_rejections_credits() -> None:
    metrics = _dashboard_metrics("gateway.json")
    exprs = _dashboard_exprs("gateway.json")
    assert {
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "gateway_rejections_total",
        "gateway_credits_charged_total",
        "gateway_in_flight_requests",
    } <= metrics
    assert 'status_class="5xx"' in exprs
    assert "sum by (reason)" in exprs
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(gateway_request_duration_seconds_bucket" in exprs


def test_triton_dashboard_covers_models_queue_compute_batches_instances_gpu() -> None:
    metrics = _dashboard_metrics("triton.json")
    assert {
        "nv_inference_request_success",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
    } <= metrics
    assert "sum by (model)" in _dashboard_exprs("triton.json")


def test_dashboards_are_loaded_into_labelled_configmaps() -> None:
    rendered = render("default")
    values = load_values()["monitoring"]["dashboards"]
    configmaps = [cm for cm in rendered.of_kind("ConfigMap") if "-dashboard-" in cm["metadata"]["name"]]
    assert len(configmaps) == len(DASHBOARD_FILES)
    by_file = {}
    for configmap in configmaps:
        assert configmap["metadata"]["labels"][values["label"]] == values["labelValue"]
        (key, content), = configmap["data"].items()
        by_file[key] = content
    for path in DASHBOARD_FILES:
        assert json.loads(by_file[f"imageserve-{path.name}"]) == json.loads(path.read_text())


# --- prometheus-adapter ----------------------------------------------------------------------


def test_adapter_rule_serves_the_metric_the_triton_hpa_uses() -> None:
    yaml = require_module("yaml")
    (rule,) = yaml.safe_load(ADAPTER_RULES_FILE.read_text())["rules"]["custom"]
    values = load_values()["triton"]
    assert rule["name"]["as"] == values["autoscaling"]["metricName"]
    assert f'model!~"{values["ensembleModelRegex"]}"' in rule["metricsQuery"]
    for scenario in SCENARIOS:
        for hpa in render(scenario).of_kind("HorizontalPodAutoscaler"):
            for metric in hpa["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    assert metric["pods"]["metric"]["name"] == rule["name"]["as"]
