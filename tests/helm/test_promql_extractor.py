"""The metric-name extractor the monitoring tests rely on."""

from __future__ import annotations

import pytest

from .promql import PromQLError, grafana_variable_metric_names, metric_names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        ('rate(http_total{job="a",code=~"5.."}[5m])', {"http_total"}),
        (
            "histogram_quantile(0.99, sum by (le, route) (rate(lat_seconds_bucket{x=\"y\"}[$__rate_interval])))",
            {"lat_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) by (job) / sum without (pod) (rate(b_total[5m]))", {"a_total", "b_total"}),
        ("a > bool 1e6 and on (pod) group_left (model) b offset 5m", {"a", "b"}),
        ('absent(nv_inference_request_success{model="depth"})', {"nv_inference_request_success"}),
        ("imageserve:ratio_rate1h{job=\"j\"} > (14.4 * (1 - 0.995))", {"imageserve:ratio_rate1h"}),
        ('label_replace(x, "dst", "$1", "src", "(.*)")', {"x"}),
        ("-sum(rate(bytes_total[1m])) / 1e6", {"bytes_total"}),
        ("max_over_time(q[1h:5m])", {"q"}),
        ("sum by (<<.GroupBy>>) (rate(m{<<.LabelMatchers>>,model!~\"p.*\"}[2m]))", {"m"}),
        ('count by (ns) (count by (ns, model) (m{model=~"a|b"})) < 2', {"m"}),
    ],
)
def test_extracts_metric_names(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        'sum(rate({__name__=~"gateway_.*"}[5m]))',
        "rate(x[5m]",
        "sumx(rate(y[5m]))",
    ],
)
def test_rejects_what_it_cannot_read(expr: str) -> None:
    with pytest.raises(PromQLError):
        metric_names(expr)


def test_grafana_label_values_reads_the_selector_only() -> None:
    assert grafana_variable_metric_names('label_values(m_total{namespace="$namespace"}, job)') == {"m_total"}
    assert grafana_variable_metric_names("label_values(m_total, namespace)") == {"m_total"}
