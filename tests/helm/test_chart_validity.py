"""helm lint --strict, helm template, kubernetes-validate --strict and values.schema.json."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from converters.catalog import depth_model_choices

from .chart import (
    CHART_DIR,
    CI_VALUES,
    DEFAULT_VALUES,
    SCENARIOS,
    render,
    require_module,
    run_helm,
    template_args,
    tool,
)

# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a recent one.
KUBERNETES_VERSIONS = ("1.27.0", "1.30.0", "1.35.0")
# Custom resources kubernetes-validate has no schema for; test_monitoring checks their shape.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda v: v.name)
def test_helm_lint_strict(values) -> None:
    args = ["lint", "--strict", str(CHART_DIR), "--values", str(values)]
    result = run_helm(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout, result.stdout


def test_kube_version_of_chart_is_the_oldest_validated() -> None:
    chart = (CHART_DIR / "Chart.yaml").read_text()
    assert f'kubeVersion: ">={KUBERNETES_VERSIONS[0]}-0"' in chart


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_rendered_manifests_pass_kubernetes_validate_strict(kubernetes_version: str, tmp_path) -> None:
    validator = tool("kubernetes-validate")
    files = []
    for scenario in sorted(SCENARIOS):
        path = tmp_path / f"{scenario}.yaml"
        path.write_text(render(scenario).text)
        files.append(str(path))
    result = subprocess.run(
        [str(validator), "--strict", "--quiet", "-k", kubernetes_version, *files],
        capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for line in output.splitlines():
        skipped = re.search(r"Couldn't find schema for kind (\w+)", line)
        assert skipped and skipped.group(1) in CUSTOM_KINDS, f"unexpected validator output: {line}"
    validated = sum(1 for scenario in SCENARIOS for doc in render(scenario).docs if doc["kind"] not in CUSTOM_KINDS)
    assert validated > 30


def _schema() -> dict:
    return json.loads((CHART_DIR / "values.schema.json").read_text())


def test_values_schema_is_a_valid_schema_and_accepts_every_values_file() -> None:
    jsonschema = require_module("jsonschema")
    schema = _schema()
    jsonschema.Draft7Validator.check_schema(schema)
    from .chart import load_values

    for paths in SCENARIOS.values():
        jsonschema.validate(load_values(*paths), schema)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("gateway.replicaCont=3", "replicaCont"),
        ("triton.gpu.enabled=yes", "enabled"),
        ("modelBuild.cache.type=s3", "type"),
        ("monitoring.slo.latencyThresholdSeconds=1", "latencyThresholdSeconds"),
        ("gateway.image.tag=latest", "tag"),
        ("gateway.metricsPort=0", "metricsPort"),
        ("gateway.limits.maxInFlight=0", "maxInFlight"),
        ("gateway.limits.maxInFlightPerTenant=0", "maxInFlightPerTenant"),
        ("gateway.limits.requestBudgetSeconds=0", "requestBudgetSeconds"),
        ("gateway.limits.uploadTimeoutSeconds=0", "uploadTimeoutSeconds"),
        ("gateway.limits.maxInFlght=10", "maxInFlght"),
        ("gateway.corsOrigins[0]=example.com", "corsOrigins"),
        ("modelBuild.depthModel=depth_anything_large", "depthModel"),
    ],
)
def test_schema_rejects_bad_values(override: str, message: str) -> None:
    result = run_helm(*template_args(DEFAULT_VALUES, "--set", override), check=False)
    assert result.returncode != 0, f"{override} was accepted"
    assert message in result.stderr, result.stderr


def test_schema_allows_exactly_the_depth_models_the_converters_know() -> None:
    allowed = _schema()["properties"]["modelBuild"]["properties"]["depthModel"]["enum"]
    assert allowed == list(depth_model_choices())


def test_template_fails_on_inconsistent_values() -> None:
    replicas = "gateway.autoscaling.minReplicas=5,gateway.autoscaling.maxReplicas=2"
    result = run_helm(*template_args(DEFAULT_VALUES, "--set", replicas), check=False)
    assert result.returncode != 0 and "minReplicas" in result.stderr
    result = run_helm(*template_args(DEFAULT_VALUES, "--set", "triton.enabled=false"), check=False)
    assert result.returncode != 0 and "tritonGrpcUrl" in result.stderr


def test_the_chart_alone_names_the_database_it_needs() -> None:
    result = run_helm(*template_args(()), check=False)
    assert result.returncode != 0 and "gateway.secrets.databaseUrl is required" in result.stderr, result.stderr


def test_one_replica_may_keep_sqlite_and_in_process_limits() -> None:
    one = ("gateway.secrets.databaseUrl=sqlite:////tmp/g.db,gateway.secrets.redisUrl=,gateway.autoscaling.enabled=false,"
           "gateway.replicaCount=1")
    assert run_helm(*template_args(DEFAULT_VALUES, "--set", one), check=False).returncode == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # metrics would land on the public API port
        ("gateway.metricsPort=8080", "metricsPort must differ"),
        # a request admitted before SIGTERM could outlive the drain (40 - 5 - 5 = 30 s)
        ("gateway.limits.requestBudgetSeconds=30", "requestBudgetSeconds"),
        ("gateway.terminationGracePeriodSeconds=30", "requestBudgetSeconds"),
        ("gateway.limits.uploadTimeoutSeconds=20", "uploadTimeoutSeconds"),
        ("gateway.limits.maxInFlightPerTenant=33", "maxInFlightPerTenant"),
        # the saturation alert could never fire
        ("monitoring.alerts.gatewayInFlight=32", "gatewayInFlight"),
        # settings the chart owns must not be set twice
        ("gateway.env.GATEWAY_PORT=9000", "GATEWAY_PORT"),
        ("gateway.env.GATEWAY_METRICS_PORT=9000", "GATEWAY_METRICS_PORT"),
        ("gateway.env.GATEWAY_SHUTDOWN_GRACE_S=99", "GATEWAY_SHUTDOWN_GRACE_S"),
        ("gateway.env.GATEWAY_MAX_IN_FLIGHT=99", "GATEWAY_MAX_IN_FLIGHT"),
        # replicas would each keep their own balances, or admit a key's whole rate
        ("gateway.secrets.databaseUrl=sqlite:////tmp/g.db", "databaseUrl is SQLite, but up to 10 gateway replicas"),
        ("gateway.secrets.databaseUrl=sqlite:////tmp/g.db,gateway.autoscaling.enabled=false,gateway.replicaCount=2",
         "up to 2 gateway replicas"),
        ("gateway.secrets.redisUrl=", "redisUrl is empty, but up to 10 gateway replicas"),
    ],
)
def test_template_fails_on_inconsistent_gateway_values(override: str, message: str) -> None:
    result = run_helm(*template_args(DEFAULT_VALUES, "--set", override), check=False)
    assert result.returncode != 0, f"{override} was accepted"
    assert message in result.stderr, result.stderr


def test_optional_objects_can_be_turned_off() -> None:
    yaml = require_module("yaml")
    result = run_helm(
        *template_args(
            DEFAULT_VALUES,
            "--set",
            "monitoring.serviceMonitor.enabled=false,monitoring.prometheusRule.enabled=false,"
            "monitoring.dashboards.enabled=false,triton.networkPolicy.enabled=false,gateway.networkPolicy.enabled=false,"
            "gateway.autoscaling.enabled=false,gateway.pdb.enabled=false,triton.pdb.enabled=false,"
            "modelBuild.cache.type=emptyDir",
        )
    )
    kinds = {doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "HorizontalPodAutoscaler",
                        "PodDisruptionBudget", "PersistentVolumeClaim"}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda v: v.name)
def test_install_notes_render(values) -> None:
    args = ["install", "rel", str(CHART_DIR), "--namespace", "imageserve", "--dry-run=client", "--values", str(values)]
    notes = run_helm(*args).stdout.partition("NOTES:")[2]
    assert "svc/rel-imageserve-gateway" in notes and "svc/rel-imageserve-triton" in notes
