"""Properties of the rendered chart, for the defaults and every ci/*-values.yaml."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .chart import (
    CHART_DIR,
    NAMESPACE,
    RELEASE,
    REPO_ROOT,
    SCENARIOS,
    Rendered,
    containers,
    fullname,
    load_values,
    pod_specs,
    render,
    render_with,
    require_module,
)

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

GPU_RESOURCE = "nvidia.com/gpu"


def _values(rendered: Rendered) -> dict:
    return load_values(*SCENARIOS[rendered.scenario])


def _pod_labels(rendered: Rendered) -> dict[str, dict]:
    """Deployment name -> labels of its pods."""
    return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in rendered.of_kind("Deployment")}


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are expected: {selector}"
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


def test_renders_the_expected_objects(rendered: Rendered) -> None:
    kinds = {doc["kind"] for doc in rendered.docs}
    expected = {
        "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy",
        "ServiceMonitor", "PrometheusRule", "ServiceAccount", "Pod",
    }
    if not _values(rendered)["gateway"]["secrets"]["existingSecret"]:
        expected.add("Secret")
    assert expected <= kinds, f"missing {sorted(expected - kinds)}"
    assert {d["metadata"]["name"] for d in rendered.of_kind("Deployment")} == {fullname("gateway"), fullname("triton")}


def test_every_object_is_namespaced_and_labelled(rendered: Rendered) -> None:
    for doc in rendered.docs:
        meta = doc["metadata"]
        assert meta.get("namespace") == NAMESPACE, f"{doc['kind']}/{meta['name']}"
        labels = meta.get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == RELEASE, f"{doc['kind']}/{meta['name']}"
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"
        assert len(meta["name"]) <= 63


def test_no_container_runs_as_root(rendered: Rendered) -> None:
    specs = pod_specs(rendered)
    assert specs
    for where, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] != 0 and pod["runAsGroup"] != 0, where
        assert pod["seccompProfile"]["type"] in {"RuntimeDefault", "Localhost"}, where
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where
        assert spec.get("automountServiceAccountToken") is False, where
        for kind, container in containers(spec):
            name = f"{where} {kind} {container['name']}"
            context = container.get("securityContext")
            assert context, f"{name}: no securityContext"
            assert context["runAsNonRoot"] is True, name
            assert context.get("runAsUser", pod["runAsUser"]) != 0, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context.get("privileged") is not True, name
            assert "ALL" in context["capabilities"]["drop"], name
            assert not context["capabilities"].get("add"), name


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for where, spec in pod_specs(rendered):
        for _, container in containers(spec):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where} {container['name']}: {bound}"


def test_every_long_running_container_has_probes(rendered: Rendered) -> None:
    for deployment in rendered.of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            port_names = {port["name"] for port in container["ports"]}
            port_numbers = {port["containerPort"] for port in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{deployment['metadata']['name']} {container['name']}: no {probe}"
                check = container[probe]
                assert check["httpGet"]["port"] in port_names if "httpGet" in check else \
                    check["grpc"]["port"] in port_numbers


def test_triton_probes_use_health_endpoints_with_a_loading_budget(rendered: Rendered) -> None:
    triton = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]["containers"][0]
    # gRPC health checks, which Triton answers with its readiness (HTTP is off); readiness for liveness too:
    # a dead python-backend stub leaves Triton live but a model not ready, forever, and only a restart heals it
    grpc = _container_ports(triton)["grpc"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert triton[probe]["grpc"] == {"port": grpc}, probe
    assert "--allow-http=false" in triton["args"] and not any(a.startswith("--http-") for a in triton["args"])
    startup = triton["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "less than 5 minutes to load models"
    assert "--strict-readiness=true" in triton["args"]


def test_gateway_probes_and_settings(rendered: Rendered) -> None:
    spec = rendered.named("Deployment", fullname("gateway"))["spec"]["template"]["spec"]
    assert spec["enableServiceLinks"] is False, "service links would inject GATEWAY_* variables"
    (gateway,) = spec["containers"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {item["name"]: item for item in gateway["env"]}
    values = _values(rendered)
    assert env["GATEWAY_TRITON_GRPC_URL"]["value"] == f"{fullname('triton')}:{values['triton']['ports']['grpc']}"
    secret = values["gateway"]["secrets"]["existingSecret"] or f"{fullname('gateway')}-secrets"
    for name in ("GATEWAY_DATABASE_URL", "GATEWAY_BOOTSTRAP_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
    if not values["gateway"]["secrets"]["existingSecret"]:
        data = rendered.named("Secret", secret)["stringData"]
        for item in env.values():
            if "secretKeyRef" in item.get("valueFrom", {}):
                assert item["valueFrom"]["secretKeyRef"]["key"] in data
    (env_from,) = gateway["envFrom"]
    prices = rendered.named("ConfigMap", env_from["configMapRef"]["name"])["data"]
    assert set(prices) == {"GATEWAY_PRICE_BASE_CREDITS", "GATEWAY_PRICE_PER_MEGAPIXEL_CREDITS"}
    assert json.loads(prices["GATEWAY_PRICE_BASE_CREDITS"]) == values["gateway"]["priceTable"]["baseCredits"]
    assert gateway["command"] == ["python", "-m", "gateway"], "the entry point is gateway/__main__.py"
    assert "args" not in gateway, "python -m gateway takes its settings from GATEWAY_* variables only"
    assert env["GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert any(m["mountPath"] == "/tmp" for m in gateway["volumeMounts"]), "no writable scratch directory"


def _gateway_container(rendered: Rendered) -> dict:
    (gateway,) = rendered.named("Deployment", fullname("gateway"))["spec"]["template"]["spec"]["containers"]
    return gateway


def _gateway_env(rendered: Rendered) -> dict[str, str]:
    """Literal GATEWAY_* values of the gateway container; a name set twice is an error."""
    items = _gateway_container(rendered)["env"]
    names = [item["name"] for item in items]
    assert len(names) == len(set(names)), f"env names set twice: {sorted(n for n in names if names.count(n) > 1)}"
    return {item["name"]: item["value"] for item in items if "value" in item}


def _container_ports(container: dict) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def test_gateway_serves_metrics_on_a_port_of_its_own(rendered: Rendered) -> None:
    gateway = _gateway_container(rendered)
    env = _gateway_env(rendered)
    ports = _container_ports(gateway)
    values = _values(rendered)["gateway"]
    assert set(ports) == {"http", "metrics"}
    assert ports == {"http": values["port"], "metrics": values["metricsPort"]}
    assert int(env["GATEWAY_PORT"]) == ports["http"]
    assert int(env["GATEWAY_METRICS_PORT"]) == ports["metrics"], "the gateway would serve /metrics on another port"
    assert ports["metrics"] != ports["http"], "metrics must be off the API port"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert gateway[probe]["httpGet"]["port"] == "http", probe
    service = {p["name"]: p for p in rendered.named("Service", fullname("gateway"))["spec"]["ports"]}
    assert set(service) == {"http", "metrics"}
    assert service["http"]["targetPort"] == "http"
    assert service["metrics"]["targetPort"] == "metrics"


def test_gateway_drains_within_the_termination_grace_period(rendered: Rendered) -> None:
    spec = rendered.named("Deployment", fullname("gateway"))["spec"]["template"]["spec"]
    gateway = _gateway_container(rendered)
    env = _gateway_env(rendered)
    command = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pre_stop = float(command[1])
    termination = spec["terminationGracePeriodSeconds"]
    grace = float(env["GATEWAY_SHUTDOWN_GRACE_S"])
    assert 0 < grace < termination - pre_stop, (
        f"drain {grace} s does not fit in {termination} s less the {pre_stop} s preStop sleep: SIGKILL cuts requests"
    )
    values = _values(rendered)["gateway"]
    assert grace == values["terminationGracePeriodSeconds"] - values["preStopSleepSeconds"] - 5
    # A request admitted just before SIGTERM must be able to finish within the drain time.
    assert float(env["GATEWAY_REQUEST_BUDGET_S"]) < grace


def test_gateway_limits_land_in_its_environment(rendered: Rendered) -> None:
    env = _gateway_env(rendered)
    values = _values(rendered)["gateway"]
    limits = values["limits"]
    assert int(env["GATEWAY_MAX_IN_FLIGHT"]) == limits["maxInFlight"]
    assert int(env["GATEWAY_MAX_IN_FLIGHT_PER_TENANT"]) == limits["maxInFlightPerTenant"]
    assert float(env["GATEWAY_REQUEST_BUDGET_S"]) == limits["requestBudgetSeconds"]
    assert float(env["GATEWAY_UPLOAD_TIMEOUT_S"]) == limits["uploadTimeoutSeconds"]
    assert json.loads(env["GATEWAY_CORS_ORIGINS"]) == values["corsOrigins"]
    for name, value in values["env"].items():
        assert env[name] == value


def test_gateway_limits_follow_values_into_the_gateway_settings(monkeypatch) -> None:
    """Unusual values reach GatewaySettings unchanged (nothing is hard-coded in the template)."""
    from .chart import render_with

    rendered = render_with(
        "--set-json",
        'gateway.limits={"maxInFlight": 7, "maxInFlightPerTenant": 3, "requestBudgetSeconds": 12.5,'
        ' "uploadTimeoutSeconds": 4.5}',
        "--set-json", 'gateway.corsOrigins=["https://a.example.com"]',
        "--set", "gateway.metricsPort=9464,gateway.port=8081,gateway.terminationGracePeriodSeconds=50,"
        "gateway.preStopSleepSeconds=7,monitoring.alerts.gatewayInFlight=5",
    )
    settings = _settings_from(rendered, monkeypatch)
    assert (settings.max_in_flight, settings.max_in_flight_per_tenant) == (7, 3)
    assert (settings.request_budget_s, settings.upload_timeout_s) == (12.5, 4.5)
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8081, 9464)
    assert settings.shutdown_grace_s == 50 - 7 - 5
    assert settings.cors_origins == ["https://a.example.com"]
    assert _container_ports(_gateway_container(rendered)) == {"http": 8081, "metrics": 9464}


def test_triton_gpu_scheduling_and_shared_memory(rendered: Rendered) -> None:
    values = _values(rendered)["triton"]
    spec = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]
    (triton,) = spec["containers"]
    (build,) = spec["initContainers"]
    shm = next(v for v in spec["volumes"] if v["name"] == "shm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert any(m["mountPath"] == "/dev/shm" and m["name"] == "shm" for m in triton["volumeMounts"])
    # /dev/shm outlives a container restart: the entry point removes a crashed server's regions first
    assert triton["command"] == ["/opt/imageserve/docker/triton-entrypoint.sh"]
    build_env = {item["name"]: item.get("value") for item in build["env"]}
    if values["gpu"]["enabled"]:
        for container in (triton, build):
            assert container["resources"]["limits"][GPU_RESOURCE] == values["gpu"]["count"]
        assert spec["nodeSelector"].items() >= values["gpuNodeSelector"].items()
        assert any(t.get("key") == GPU_RESOURCE for t in spec["tolerations"])
        assert "--allow-gpu-metrics=true" in triton["args"]
        assert build_env["MODEL_TARGET"] == "gpu"
    else:
        assert GPU_RESOURCE not in rendered.text
        assert "--allow-gpu-metrics=false" in triton["args"]
        assert build_env["MODEL_TARGET"] == "cpu"


def test_model_build_step_feeds_the_model_repository(rendered: Rendered) -> None:
    spec = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]
    (build,) = spec["initContainers"]
    (triton,) = spec["containers"]
    env = {item["name"]: item.get("value") for item in build["env"]}
    mounts = {m["mountPath"]: m["name"] for m in build["volumeMounts"]}
    assert mounts[env["MODEL_REPOSITORY"]] == "model-repository"
    assert mounts[env["CACHE_ROOT"]] == "model-cache"
    assert "--model-repository=/models" in triton["args"]
    triton_mounts = {m["mountPath"]: m["name"] for m in triton["volumeMounts"]}
    assert triton_mounts["/models"] == "model-repository"
    # onnxruntime's TensorRT engine cache (GPU) is a link made by model-build into the cache volume: both
    # containers must see the cache volume at the same path, and the link's directory.
    cache_link = _values(rendered)["modelBuild"]["ortTensorrtCachePath"]
    if _values(rendered)["triton"]["gpu"]["enabled"]:
        assert triton_mounts[env["CACHE_ROOT"]] == "model-cache"
        link_dir = str(Path(cache_link).parent)
        assert mounts[link_dir] == triton_mounts[link_dir] == "ort-tensorrt-cache"
        assert env["ORT_TRT_CACHE_LINK"] == cache_link
    assert env["IMAGESERVE_DEPTH_MODEL"] == _values(rendered)["modelBuild"]["depthModel"]
    script_volume = next(v for v in spec["volumes"] if v["name"] == "model-build-script")
    configmap = rendered.named("ConfigMap", script_volume["configMap"]["name"])
    script = (CHART_DIR / "files" / "build-model-repository.sh").read_text()
    assert configmap["data"]["build-model-repository.sh"] == script
    cache = next(v for v in spec["volumes"] if v["name"] == "model-cache")
    cache_values = _values(rendered)["modelBuild"]["cache"]
    if cache_values["type"] == "pvc":
        claim = cache["persistentVolumeClaim"]["claimName"]
        assert cache_values["existingClaim"] == claim or rendered.has("PersistentVolumeClaim", claim)
    else:
        assert "emptyDir" in cache


def test_depth_model_value_reaches_the_model_build_step() -> None:
    """modelBuild.depthModel is the build's IMAGESERVE_DEPTH_MODEL; the serving container does not need it."""
    default = render("default")
    assert load_values()["modelBuild"]["depthModel"] == "fastdepth"
    opted_in = render_with("--set", "modelBuild.depthModel=depth_anything")
    for rendered, expected in ((default, "fastdepth"), (opted_in, "depth_anything")):
        spec = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]
        (build,) = spec["initContainers"]
        (triton,) = spec["containers"]
        assert {item["name"]: item.get("value") for item in build["env"]}["IMAGESERVE_DEPTH_MODEL"] == expected
        assert "IMAGESERVE_DEPTH_MODEL" not in {item["name"] for item in triton.get("env", [])}


def test_referenced_configmaps_secrets_and_accounts_exist(rendered: Rendered) -> None:
    existing_secret = _values(rendered)["gateway"]["secrets"]["existingSecret"]
    for where, spec in pod_specs(rendered):
        if "serviceAccountName" in spec:
            assert rendered.has("ServiceAccount", spec["serviceAccountName"]), where
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert rendered.has("ConfigMap", volume["configMap"]["name"]), where
            if "secret" in volume:
                assert rendered.has("Secret", volume["secret"]["secretName"]), where
        for _, container in containers(spec):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == existing_secret or rendered.has("Secret", ref["name"]), where


def test_services_select_one_deployment_and_named_ports(rendered: Rendered) -> None:
    pods = _pod_labels(rendered)
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        matches = [name for name, labels in pods.items() if _selects({"matchLabels": selector}, labels)]
        assert len(matches) == 1, f"{service['metadata']['name']} selects {matches}"
        container_ports = {
            port["name"]
            for container in deployments[matches[0]]["spec"]["template"]["spec"]["containers"]
            for port in container["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports


def test_triton_service_exposes_grpc_and_metrics_only(rendered: Rendered) -> None:
    ports = {p["name"]: p["port"] for p in rendered.named("Service", fullname("triton"))["spec"]["ports"]}
    assert ports == {"grpc": 8001, "metrics": 8002}


def test_network_policy_isolates_triton(rendered: Rendered) -> None:
    values = _values(rendered)["triton"]["networkPolicy"]
    pods = _pod_labels(rendered)
    spec = rendered.named("NetworkPolicy", fullname("triton"))["spec"]
    assert _selects(spec["podSelector"], pods[fullname("triton")])
    assert not _selects(spec["podSelector"], pods[fullname("gateway")])
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    triton_ports = {
        p["name"]: p["containerPort"]
        for p in rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    gateway_labels = pods[fullname("gateway")]
    gateway_peer = {"podSelector": {"matchLabels": {k: gateway_labels[k] for k in spec["podSelector"]["matchLabels"]}}}
    prometheus_peer = {"namespaceSelector": values["prometheus"]["namespaceSelector"],
                       "podSelector": values["prometheus"]["podSelector"]}
    allowed_inference_peers = [gateway_peer, *values["extraInferenceClients"]]
    covered = set()
    for rule in spec["ingress"]:
        assert rule.get("from"), "a rule without peers admits everyone"
        assert rule.get("ports"), "a rule without ports admits every port"
        ports = {p["port"] for p in rule["ports"]}
        covered |= ports
        for peer in rule["from"]:
            assert "ipBlock" not in peer
            assert peer.get("podSelector") != {} or "namespaceSelector" in peer
            assert peer.get("namespaceSelector") != {}, "an empty namespaceSelector admits every namespace"
            if ports == {"metrics"}:
                assert peer == prometheus_peer
            else:
                assert ports == {"grpc"}
                assert peer in allowed_inference_peers, peer
    assert covered == set(triton_ports), "every Triton port must be reachable by its one intended client"
    gateway_rules = [rule for rule in spec["ingress"] if gateway_peer in rule["from"]]
    assert gateway_rules and {p["port"] for p in gateway_rules[0]["ports"]} >= {"grpc"}
    assert _selects(gateway_peer["podSelector"], pods[fullname("gateway")])


def _egress_ports(rule: dict) -> set[int]:
    assert rule.get("ports"), "an egress rule without ports reaches every port"
    return {port["port"] for port in rule["ports"]}


def test_egress_reaches_only_dns_and_the_declared_peers(rendered: Rendered) -> None:
    """Triton can reach the cluster DNS and the registries (HTTPS), never the database, Redis or the
    gateway; the gateway reaches DNS, this release's Triton on gRPC, and its database and Redis."""
    values = _values(rendered)
    dns = {"to": values["clusterDns"], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    triton = rendered.named("NetworkPolicy", fullname("triton"))["spec"]["egress"]
    assert triton == [dns, *values["triton"]["networkPolicy"]["egress"]]
    assert all(_egress_ports(rule) <= {53, 443} for rule in triton)
    gateway = rendered.named("NetworkPolicy", fullname("gateway"))["spec"]["egress"]
    pods = _pod_labels(rendered)
    assert gateway[0] == dns
    to_triton = gateway[1]
    assert _selects(to_triton["to"][0]["podSelector"], pods[fullname("triton")])
    assert not _selects(to_triton["to"][0]["podSelector"], pods[fullname("gateway")])
    assert _egress_ports(to_triton) == {values["triton"]["ports"]["grpc"]}
    assert gateway[2:] == values["gateway"]["networkPolicy"]["egress"]
    assert set().union(*map(_egress_ports, gateway)) == {53, 8001, 5432, 6379}


def test_nginx_ingress_streams_uploads_and_follows_the_gateway_limits() -> None:
    annotations = render("gpu").named("Ingress", fullname("gateway"))["metadata"]["annotations"]
    nginx = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in annotations.items()}
    limits = load_values(*SCENARIOS["gpu"])["gateway"]["limits"]
    assert nginx == {
        "proxy-body-size": f"{30 * 1024 + 64}k",  # the gateway's 30 MiB and the multipart framing
        "proxy-request-buffering": "off",  # streamed to the gateway, never spooled to the controller's disk
        "proxy-max-temp-file-size": "0",
        "proxy-send-timeout": str(limits["uploadTimeoutSeconds"]),
        "proxy-read-timeout": str(limits["requestBudgetSeconds"] + 5),
    }
    buffered = "gateway.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-request-buffering=on"
    overridden = render_with("--set", "gateway.ingress.enabled=true,gateway.ingress.className=nginx",
                             "--set-string", f"gateway.env.GATEWAY_MAX_BODY_BYTES=1048576,{buffered}")
    annotations = overridden.named("Ingress", fullname("gateway"))["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"  # the operator's value wins
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1088k"
    plain = render_with("--set", "gateway.ingress.enabled=true,gateway.ingress.className=traefik")
    assert not plain.named("Ingress", fullname("gateway"))["metadata"].get("annotations")


def test_network_policy_keeps_gateway_metrics_to_prometheus(rendered: Rendered) -> None:
    values = _values(rendered)["gateway"]["networkPolicy"]
    assert rendered.has("NetworkPolicy", fullname("gateway")) == values["enabled"]
    assert values["enabled"], "the chart's scenarios keep the gateway's metrics port closed to all but Prometheus"
    pods = _pod_labels(rendered)
    spec = rendered.named("NetworkPolicy", fullname("gateway"))["spec"]
    assert _selects(spec["podSelector"], pods[fullname("gateway")])
    assert not _selects(spec["podSelector"], pods[fullname("triton")])
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    prometheus_peer = {"namespaceSelector": values["prometheus"]["namespaceSelector"],
                       "podSelector": values["prometheus"]["podSelector"]}
    test_pod = next(labels for where, labels in (
        (doc["metadata"]["name"], doc["metadata"]["labels"]) for doc in rendered.of_kind("Pod")
    ) if where.endswith("-test-ready"))
    covered = set()
    for rule in spec["ingress"]:
        assert rule.get("ports"), "a rule without ports admits every port"
        ports = {p["port"] for p in rule["ports"]}
        covered |= ports
        if "metrics" in ports:
            assert ports == {"metrics"}
            assert rule["from"] == [prometheus_peer], "the metrics port admits Prometheus only"
        else:
            assert ports == {"http"}
            if values["apiClients"]:
                assert rule["from"][: len(values["apiClients"])] == values["apiClients"]
                extra = rule["from"][len(values["apiClients"]):]
                assert len(extra) == 1 and _selects(extra[0]["podSelector"], test_pod), "helm test pod"
            else:
                assert "from" not in rule, "no apiClients: the API port admits every source"
    assert covered == set(_container_ports(_gateway_container(rendered))), "every gateway port has one rule"


def test_hpas_target_existing_deployments(rendered: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    values = _values(rendered)
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    expected = {fullname(c) for c in ("gateway", "triton") if values[c]["autoscaling"]["enabled"]}
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas} == expected
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["apiVersion"] == "apps/v1" and target["kind"] == "Deployment"
        assert target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        metrics = hpa["spec"]["metrics"]
        if target["name"] == fullname("gateway"):
            assert metrics == [
                {"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization",
                    "averageUtilization": values["gateway"]["autoscaling"]["targetCPUUtilizationPercentage"],
                }}}
            ]
        else:
            (metric,) = metrics
            assert metric["type"] == "Pods"
            assert "queue" in metric["pods"]["metric"]["name"]
    for name, deployment in deployments.items():
        if name not in expected:
            assert deployment["spec"]["replicas"] >= 1


def test_pdbs_and_topology_spread_select_their_pods(rendered: Rendered) -> None:
    pods = _pod_labels(rendered)
    pdbs = rendered.of_kind("PodDisruptionBudget")
    assert {pdb["metadata"]["name"] for pdb in pdbs} == set(pods)
    for pdb in pdbs:
        assert _selects(pdb["spec"]["selector"], pods[pdb["metadata"]["name"]])
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]
    for deployment in rendered.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} >= {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in constraints:
            assert _selects(constraint["labelSelector"], pods[name])
            others = [other for other in pods if other != name]
            assert not any(_selects(constraint["labelSelector"], pods[other]) for other in others)


def test_service_monitors_scrape_gateway_and_triton(rendered: Rendered) -> None:
    services = rendered.of_kind("Service")
    monitors = rendered.of_kind("ServiceMonitor")
    assert len(monitors) == 2
    scraped = set()
    for monitor in monitors:
        matching = [s for s in services if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
        assert len(matching) == 1, monitor["metadata"]["name"]
        service = matching[0]
        port_names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
        scraped.add(service["metadata"]["name"])
    assert scraped == {fullname("gateway"), fullname("triton")}


def test_gateway_service_monitor_scrapes_the_metrics_port(rendered: Rendered) -> None:
    """The gateway answers 404 for /metrics on its API port once GATEWAY_METRICS_PORT is set: the
    scrape must go to the Service port that reaches the container port GATEWAY_METRICS_PORT names."""
    monitor = rendered.named("ServiceMonitor", fullname("gateway"))
    service = rendered.named("Service", fullname("gateway"))
    assert _selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    (service_port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    container_ports = _container_ports(_gateway_container(rendered))
    target = service_port["targetPort"]
    target_number = container_ports[target] if isinstance(target, str) else target
    assert target_number == int(_gateway_env(rendered)["GATEWAY_METRICS_PORT"])
    assert target_number != container_ports["http"]


def test_ingress_never_routes_to_the_metrics_port(rendered: Rendered) -> None:
    values = _values(rendered)["gateway"]
    ingresses = rendered.of_kind("Ingress")
    assert bool(ingresses) == values["ingress"]["enabled"]
    service = rendered.named("Service", fullname("gateway"))
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    by_number = {p["port"]: p for p in service["spec"]["ports"]}
    container_ports = _container_ports(_gateway_container(rendered))
    metrics = int(_gateway_env(rendered)["GATEWAY_METRICS_PORT"])
    backends = [
        path["backend"]
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ] + [ingress["spec"]["defaultBackend"] for ingress in ingresses if "defaultBackend" in ingress["spec"]]
    assert bool(backends) == bool(ingresses)
    for backend in backends:
        assert backend["service"]["name"] == fullname("gateway")
        port = backend["service"]["port"]
        service_port = by_name[port["name"]] if "name" in port else by_number[port["number"]]
        assert service_port["name"] == "http", backend
        target = service_port["targetPort"]
        target_number = container_ports[target] if isinstance(target, str) else target
        assert target_number == container_ports["http"] != metrics, backend


def test_images_are_tagged_and_never_latest(rendered: Rendered) -> None:
    for where, spec in pod_specs(rendered):
        for _, container in containers(spec):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and "/" not in tag, f"{where}: {image} has no tag"
            assert tag != "latest", f"{where}: {image}"


def test_ci_values_files_exist() -> None:
    names = set(SCENARIOS) - {"default"}
    assert {"cpu", "gpu"} <= names


# --- agreement with the model repositories the converters generate ----------------------------

MODEL_REPOSITORIES = [REPO_ROOT / "model_repository", REPO_ROOT / "model_repository_gpu"]


def _configs(repository: Path) -> dict[str, str]:
    configs = {path.parent.name: path.read_text() for path in repository.glob("*/config.pbtxt")}
    assert configs, f"no config.pbtxt under {repository.relative_to(REPO_ROOT)}"
    return configs


def test_chart_model_list_matches_the_model_repositories() -> None:
    values = load_values()["triton"]
    for repository in MODEL_REPOSITORIES:
        configs = _configs(repository)
        assert set(configs) == set(values["models"]), repository.name
        for name, config in configs.items():
            is_ensemble = 'platform: "ensemble"' in config
            assert bool(re.fullmatch(values["ensembleModelRegex"], name)) == is_ensemble, f"{repository.name}/{name}"


def test_onnxruntime_tensorrt_cache_path_matches_the_gpu_configs() -> None:
    expected = load_values()["modelBuild"]["ortTensorrtCachePath"]
    paths = set()
    for config in _configs(REPO_ROOT / "model_repository_gpu").values():
        paths |= set(re.findall(r'key: "trt_engine_cache_path"\s*value: "([^"]+)"', config))
    assert paths == {expected}


# Stand-ins for the Secret's values, valid for the gateway's settings.
SECRET_STAND_INS = {
    "database-url": "postgresql+psycopg://imageserve:secret@postgres:5432/imageserve",
    "redis-url": "redis://redis:6379/0",
    "bootstrap-api-key": "k" * 32,
}


def _settings_from(rendered: Rendered, monkeypatch) -> GatewaySettings:
    """GatewaySettings built from exactly the environment the rendered gateway container gets."""
    settings_module = require_module("gateway.settings")
    fields = settings_module.GatewaySettings.model_fields
    gateway = _gateway_container(rendered)
    environment = {}
    for source in gateway.get("envFrom", []):
        environment |= rendered.named("ConfigMap", source["configMapRef"]["name"])["data"]
    for item in gateway["env"]:
        if "value" in item:
            environment[item["name"]] = item["value"]
        elif "resourceFieldRef" in item["valueFrom"]:  # the container's memory limit, in bytes
            assert item["valueFrom"]["resourceFieldRef"] == {"containerName": "gateway", "resource": "limits.memory"}
            environment[item["name"]] = str(2 * 2**30)
        else:
            environment[item["name"]] = SECRET_STAND_INS[item["valueFrom"]["secretKeyRef"]["key"]]
    for name in environment:
        assert name.startswith("GATEWAY_") and name.removeprefix("GATEWAY_").lower() in fields, name
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = settings_module.GatewaySettings()
    assert settings.triton_grpc_url == environment["GATEWAY_TRITON_GRPC_URL"]
    assert settings.price_base_credits == json.loads(environment["GATEWAY_PRICE_BASE_CREDITS"])
    return settings


def test_gateway_accepts_the_environment_the_chart_gives_it(rendered: Rendered, monkeypatch) -> None:
    """Every GATEWAY_* variable the chart sets is a field of gateway.settings.GatewaySettings, and
    the settings accept the rendered values (a renamed or mistyped setting would otherwise be
    ignored silently)."""
    settings = _settings_from(rendered, monkeypatch)
    ports = _container_ports(_gateway_container(rendered))
    assert settings.host == "0.0.0.0"
    assert (settings.port, settings.metrics_port) == (ports["http"], ports["metrics"])
    limits = _values(rendered)["gateway"]["limits"]
    assert settings.max_in_flight == limits["maxInFlight"]
    assert settings.request_budget_s == limits["requestBudgetSeconds"]


def test_replicas_from_an_existing_secret_refuse_sqlite_at_start(monkeypatch) -> None:
    """The chart cannot read an existingSecret, so it tells the gateway that several replicas may run;
    the gateway then refuses a SQLite URL from that Secret (and a missing Redis URL) at start."""
    def shared_state(scenario: str) -> str:
        return {item["name"]: item.get("value") for item in _gateway_container(render(scenario))["env"]}[
            "GATEWAY_SHARED_STATE"]

    assert (shared_state("gpu"), shared_state("cpu")) == ("true", "false")  # up to 20 replicas; one
    rendered = render("gpu")
    monkeypatch.setitem(SECRET_STAND_INS, "database-url", "sqlite:////tmp/gateway.db")
    with pytest.raises(ValueError, match="GATEWAY_DATABASE_URL is SQLite, but GATEWAY_SHARED_STATE"):
        _settings_from(rendered, monkeypatch)
    monkeypatch.setitem(SECRET_STAND_INS, "database-url", "postgresql+psycopg://u:p@db/imageserve")
    monkeypatch.setitem(SECRET_STAND_INS, "redis-url", "")
    with pytest.raises(ValueError, match="GATEWAY_REDIS_URL is unset"):
        _settings_from(rendered, monkeypatch)


def test_ingress_exposes_only_the_api(rendered: Rendered) -> None:
    paths = [path["path"] for ingress in rendered.of_kind("Ingress") for rule in ingress["spec"]["rules"]
             for path in rule["http"]["paths"]]
    assert all(path == "/v1" or path.startswith("/v1/") for path in paths), paths


def test_triton_restricts_the_protocols_the_gateway_never_uses(rendered: Rendered) -> None:
    spec = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]
    (triton,) = spec["containers"]
    for flag in ("--grpc-restricted-protocol=",):  # HTTP is off altogether
        (arg,) = [a for a in triton["args"] if a.startswith(flag)]
        protocols, _, header = arg.removeprefix(flag).partition(":")
        assert {"shared-memory", "model-repository", "statistics"} <= set(protocols.split(","))
        assert "inference" not in protocols.split(",") and "health" not in protocols.split(",")
        assert header == "admin-key=$(TRITON_ADMIN_KEY)", "the key comes from a Secret, never from values"
    env = {item["name"]: item for item in triton["env"]}
    secret_name = env["TRITON_ADMIN_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    secret = rendered.named("Secret", secret_name)
    assert len(secret["data"]["admin-key"]) >= 40  # 32 random characters, base64
    assert "TRITON_ADMIN_KEY" not in str(rendered.named("Deployment", fullname("gateway")))


def test_the_serving_container_sees_the_model_cache_only_for_gpu_engines(rendered: Rendered) -> None:
    """The cache outlives pods and is verified against its manifest by model-build; Triton itself gets it
    only on GPU nodes, where onnxruntime writes TensorRT engines into it."""
    gpu = _values(rendered)["triton"]["gpu"]["enabled"]
    spec = rendered.named("Deployment", fullname("triton"))["spec"]["template"]["spec"]
    (triton,) = spec["containers"]
    mounted = {m["name"] for m in triton["volumeMounts"]}
    assert ("model-cache" in mounted) == gpu
    assert "MANIFEST.sha256" in rendered.named("ConfigMap", fullname("triton") + "-model-build")["data"][
        "build-model-repository.sh"]
