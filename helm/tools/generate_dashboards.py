"""Writes the chart's Grafana dashboards (helm/imageserve/dashboards/*.json).

The JSON files are what the chart ships (standalone, importable by hand); this script is how
they are edited. Run it after changing a panel:

    .venv/bin/python helm/tools/generate_dashboards.py

tests/helm checks that the committed files equal its output and that every metric the
queries use is one the gateway or Triton exports.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "imageserve" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    stacked: bool = False
    extra_defaults: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _datasource_variable() -> dict:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }


def _query_variable(name: str, label: str, query: str, *, multi: bool = False) -> dict:
    variable = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-query"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "current": {},
        "hide": 0,
        "options": [],
        "multi": multi,
        "includeAll": multi,
    }
    if multi:
        variable["allValue"] = ".*"
    return variable


def _custom_variable(name: str, label: str, value: str, description: str) -> dict:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "custom",
        "query": value,
        "current": {"text": value, "value": value},
        "options": [{"text": value, "value": value, "selected": True}],
        "hide": 0,
    }


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    defaults: dict = {"unit": panel.unit}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stacked else 5,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
        }
    defaults.update(panel.extra_defaults)
    options: dict
    if panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
    else:
        options = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": DATASOURCE,
                "expr": query.expr,
                "legendFormat": query.legend,
                "range": True,
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def build_dashboard(*, uid: str, title: str, description: str, tags: list[str], variables: list[dict], rows: list[Row]) -> dict:
    panels: list[dict] = []
    panel_id = 1
    y = 0
    for row in rows:
        panels.append(
            {"id": panel_id, "type": "row", "title": row.title, "collapsed": False, "panels": [], "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}}
        )
        panel_id += 1
        y += 1
        x = 0
        row_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x = 0
                y += row_height
                row_height = 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": variables},
        "panels": panels,
    }


# --- gateway -----------------------------------------------------------------------------

GW = 'namespace="$namespace",job="$job"'


def _quantiles(metric: str, by: str, quantiles: tuple[str, ...] = ("0.5", "0.9", "0.99")) -> tuple[Query, ...]:
    group = f"{by}, le" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{GW}}}[{RATE}])))",
            f"{prefix}p{round(float(q) * 100)}",
        )
        for q in quantiles
    )


def gateway_dashboard() -> dict:
    traffic = Row(
        "Traffic and errors",
        (
            Panel(
                "Requests by route",
                (Query(f"sum by (route) (rate(gateway_requests_total{{{GW}}}[{RATE}]))", "{{route}}"),),
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Answers by status class",
                (Query(f"sum by (status_class) (rate(gateway_requests_total{{{GW}}}[{RATE}]))", "{{status_class}}"),),
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "5xx ratio (availability SLI)",
                (
                    Query(
                        f'sum(rate(gateway_requests_total{{{GW},status_class="5xx"}}[{RATE}])) / sum(rate(gateway_requests_total{{{GW}}}[{RATE}]))',
                        "5xx ratio",
                    ),
                ),
                unit="percentunit",
                description="Share of requests answered with a 5xx status; the availability SLO counts these.",
            ),
            Panel(
                "Requests in flight by pod",
                (Query(f"sum by (pod) (gateway_in_flight_requests{{{GW}}})", "{{pod}}"),),
                description="Concurrent requests inside each gateway pod (saturation).",
            ),
        ),
    )
    latency = Row(
        "Latency",
        (
            Panel("Request latency (all routes)", _quantiles("gateway_request_duration_seconds", ""), unit="s"),
            Panel("Request latency p99 by route", _quantiles("gateway_request_duration_seconds", "route", ("0.99",)), unit="s"),
            Panel("Triton call latency by route", _quantiles("gateway_triton_duration_seconds", "route", ("0.5", "0.99")), unit="s"),
            Panel(
                "Mean time spent outside Triton",
                (
                    Query(
                        f"(sum by (route) (rate(gateway_request_duration_seconds_sum{{{GW}}}[{RATE}])) - sum by (route) (rate(gateway_triton_duration_seconds_sum{{{GW}}}[{RATE}])))"
                        f" / sum by (route) (rate(gateway_request_duration_seconds_count{{{GW}}}[{RATE}]))",
                        "{{route}}",
                    ),
                ),
                unit="s",
                description="Mean request time minus mean Triton call time: auth, limits, ledger and transfer in the gateway.",
            ),
            Panel(
                "Requests within the latency SLO threshold",
                (
                    Query(
                        f'sum(rate(gateway_request_duration_seconds_bucket{{{GW},le="$slo_le"}}[{RATE}])) / sum(rate(gateway_request_duration_seconds_count{{{GW}}}[{RATE}]))',
                        "within $slo_le s",
                    ),
                ),
                unit="percentunit",
                width=24,
                description="Share of requests faster than the SLO threshold (the slo_le variable; set it to monitoring.slo.latencyThresholdSeconds).",
            ),
        ),
    )
    business = Row(
        "Rejections and credits",
        (
            Panel(
                "Rejections by reason",
                (Query(f"sum by (reason) (rate(gateway_rejections_total{{{GW}}}[{RATE}]))", "{{reason}}"),),
                unit="reqps",
                stacked=True,
                description="auth, quota, rate, bad_input, overload.",
            ),
            Panel(
                "Credits charged by operation",
                (Query(f"sum by (operation) (rate(gateway_credits_charged_total{{{GW}}}[{RATE}]))", "{{operation}}"),),
                unit="short",
                stacked=True,
                description="Credits committed per second.",
            ),
            Panel(
                "Credits charged in the time range",
                (Query(f"sum by (operation) (increase(gateway_credits_charged_total{{{GW}}}[$__range]))", "{{operation}}"),),
                kind="stat",
            ),
            Panel(
                "Ledger write errors",
                (Query(f"sum(increase(gateway_ledger_write_errors_total{{{GW}}}[{RATE}]))", "errors"),),
                description="Any value above zero means billing entries may be missing.",
                extra_defaults={"color": {"mode": "fixed", "fixedColor": "red"}},
            ),
        ),
    )
    payload = Row(
        "Payload",
        (
            Panel("Input size by route", _quantiles("gateway_input_megapixels", "route", ("0.5", "0.95")), unit="none", description="Megapixels per input photo."),
            Panel(
                "Bytes in and out",
                (
                    Query(f"sum by (route) (rate(gateway_request_bytes_total{{{GW}}}[{RATE}]))", "in {{route}}"),
                    Query(f"-sum by (route) (rate(gateway_response_bytes_total{{{GW}}}[{RATE}]))", "out {{route}}"),
                ),
                unit="Bps",
                description="Request bytes above the axis, response bytes below.",
            ),
        ),
    )
    variables = [
        _datasource_variable(),
        _query_variable("namespace", "Namespace", "label_values(gateway_in_flight_requests, namespace)"),
        _query_variable("job", "Gateway", 'label_values(gateway_in_flight_requests{namespace="$namespace"}, job)'),
        _custom_variable("slo_le", "SLO threshold (s)", "1.0", "A bucket bound of gateway_request_duration_seconds, as its le label writes it."),
    ]
    return build_dashboard(
        uid="imageserve-gateway",
        title="imageserve / Gateway",
        description="HTTP gateway: traffic, errors, latency percentiles, rejections by reason, credits.",
        tags=["imageserve", "gateway"],
        variables=variables,
        rows=[traffic, latency, business, payload],
    )


# --- Triton ------------------------------------------------------------------------------

TR = 'namespace="$namespace",job="$job",model=~"$model"'
TR_MACHINE = 'namespace="$namespace",job="$job"'


def _per_request(numerator: str) -> str:
    """Mean of a cumulative microsecond counter per successful request, in seconds."""
    return (
        f"sum by (model) (rate({numerator}{{{TR}}}[{RATE}]))"
        f" / sum by (model) (rate(nv_inference_request_success{{{TR}}}[{RATE}])) / 1e6"
    )


def triton_dashboard() -> dict:
    requests = Row(
        "Requests",
        (
            Panel(
                "Successful requests by model",
                (Query(f"sum by (model) (rate(nv_inference_request_success{{{TR}}}[{RATE}]))", "{{model}}"),),
                unit="reqps",
            ),
            Panel(
                "Failed requests by model",
                (Query(f"sum by (model) (rate(nv_inference_request_failure{{{TR}}}[{RATE}]))", "{{model}}"),),
                unit="reqps",
            ),
            Panel(
                "Pending requests by model",
                (Query(f"sum by (model) (nv_inference_pending_request_count{{{TR}}})", "{{model}}"),),
                description="Requests waiting in each model's queue (saturation).",
            ),
            Panel(
                "Mean request duration by model",
                (Query(_per_request("nv_inference_request_duration_us"), "{{model}}"),),
                unit="s",
                description="End-to-end time inside Triton per request, queue included.",
            ),
        ),
    )
    timing = Row(
        "Queue versus compute",
        (
            Panel(
                "Mean queue time by model",
                (Query(_per_request("nv_inference_queue_duration_us"), "{{model}}"),),
                unit="s",
                description="Time a request waits for an instance; the autoscaling signal.",
            ),
            Panel(
                "Mean compute time by model",
                (
                    Query(
                        f"(sum by (model) (rate(nv_inference_compute_input_duration_us{{{TR}}}[{RATE}]))"
                        f" + sum by (model) (rate(nv_inference_compute_infer_duration_us{{{TR}}}[{RATE}]))"
                        f" + sum by (model) (rate(nv_inference_compute_output_duration_us{{{TR}}}[{RATE}])))"
                        f" / sum by (model) (rate(nv_inference_request_success{{{TR}}}[{RATE}])) / 1e6",
                        "{{model}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Queue and compute phases (selected models)",
                (
                    Query(_per_request("nv_inference_queue_duration_us").replace("sum by (model)", "sum"), "queue"),
                    Query(_per_request("nv_inference_compute_input_duration_us").replace("sum by (model)", "sum"), "compute input"),
                    Query(_per_request("nv_inference_compute_infer_duration_us").replace("sum by (model)", "sum"), "compute infer"),
                    Query(_per_request("nv_inference_compute_output_duration_us").replace("sum by (model)", "sum"), "compute output"),
                ),
                unit="s",
                stacked=True,
                width=24,
                description="Where the time of a request goes, summed over the selected models.",
            ),
        ),
    )
    batching = Row(
        "Batching and instances",
        (
            Panel(
                "Mean batch size by model",
                (
                    Query(
                        f"sum by (model) (rate(nv_inference_count{{{TR}}}[{RATE}])) / sum by (model) (rate(nv_inference_exec_count{{{TR}}}[{RATE}]))",
                        "{{model}}",
                    ),
                ),
                description="Inferences per model execution: how well dynamic batching fills batches.",
            ),
            Panel(
                "Executions by model",
                (Query(f"sum by (model) (rate(nv_inference_exec_count{{{TR}}}[{RATE}]))", "{{model}}"),),
                unit="ops",
            ),
            Panel(
                "Busy instances by model (approx.)",
                (
                    Query(
                        f"(sum by (model) (rate(nv_inference_compute_input_duration_us{{{TR}}}[{RATE}]))"
                        f" + sum by (model) (rate(nv_inference_compute_infer_duration_us{{{TR}}}[{RATE}]))"
                        f" + sum by (model) (rate(nv_inference_compute_output_duration_us{{{TR}}}[{RATE}])))"
                        f" / 1e6 * sum by (model) (rate(nv_inference_exec_count{{{TR}}}[{RATE}]))"
                        f" / sum by (model) (rate(nv_inference_request_success{{{TR}}}[{RATE}]))",
                        "{{model}}",
                    ),
                ),
                width=24,
                description=(
                    "Average number of model instances computing at once, over all pods (compute time per execution times "
                    "executions per second). Divide by instances per pod x pods for instance utilisation."
                ),
            ),
        ),
    )
    machine = Row(
        "GPU and host",
        (
            Panel(
                "GPU utilisation",
                (Query(f"avg by (pod, gpu_uuid) (nv_gpu_utilization{{{TR_MACHINE}}})", "{{pod}} {{gpu_uuid}}"),),
                unit="percentunit",
                description="Empty on CPU-only installs.",
            ),
            Panel(
                "GPU memory",
                (
                    Query(f"max by (pod, gpu_uuid) (nv_gpu_memory_used_bytes{{{TR_MACHINE}}})", "used {{pod}}"),
                    Query(f"max by (pod, gpu_uuid) (nv_gpu_memory_total_bytes{{{TR_MACHINE}}})", "total {{pod}}"),
                ),
                unit="bytes",
            ),
            Panel(
                "GPU power",
                (Query(f"max by (pod, gpu_uuid) (nv_gpu_power_usage{{{TR_MACHINE}}})", "{{pod}} {{gpu_uuid}}"),),
                unit="watt",
            ),
            Panel(
                "CPU utilisation and memory",
                (
                    Query(f"avg by (pod) (nv_cpu_utilization{{{TR_MACHINE}}})", "cpu {{pod}}"),
                    Query(
                        f"max by (pod) (nv_cpu_memory_used_bytes{{{TR_MACHINE}}}) / max by (pod) (nv_cpu_memory_total_bytes{{{TR_MACHINE}}})",
                        "memory {{pod}}",
                    ),
                ),
                unit="percentunit",
            ),
        ),
    )
    variables = [
        _datasource_variable(),
        _query_variable("namespace", "Namespace", "label_values(nv_inference_request_success, namespace)"),
        _query_variable("job", "Triton", 'label_values(nv_inference_request_success{namespace="$namespace"}, job)'),
        _query_variable("model", "Model", 'label_values(nv_inference_request_success{namespace="$namespace",job="$job"}, model)', multi=True),
    ]
    return build_dashboard(
        uid="imageserve-triton",
        title="imageserve / Triton",
        description="Triton Inference Server: per-model requests, queue versus compute time, batch sizes, instance use, GPU.",
        tags=["imageserve", "triton"],
        variables=variables,
        rows=[requests, timing, batching, machine],
    )


DASHBOARDS = {"gateway.json": gateway_dashboard, "triton.json": triton_dashboard}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="directory to write into")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (args.out / name).write_text(render(name), encoding="utf-8")


if __name__ == "__main__":
    main()
