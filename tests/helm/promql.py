"""Metric names used by PromQL expressions (alert rules, dashboards, prometheus-adapter rules).

Not a full PromQL parser: it removes what cannot name a metric (strings, label matchers, range
and subquery brackets, grouping clauses, numbers, durations, keywords) and returns the
identifiers that remain and are not function calls. Unknown functions are reported as errors
so that a typo cannot hide a metric name.
"""

from __future__ import annotations

import re

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "double_exponential_smoothing",
    "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10",
    "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort",
    "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector",
    "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "mad_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
    "or", "unless", "atan2", "inf", "nan", "start", "end",
}

# Grafana's template variables ($__rate_interval, ${job}, $namespace) and prometheus-adapter's
# Go template fields (<<.LabelMatchers>>, <<.GroupBy>>).
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+(?::\w+)?\}?")
_ADAPTER_FIELD = re.compile(r"<<\s*\.\w+\s*>>")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_TOKEN = re.compile(
    r"(?P<duration>\d+(?:\.\d+)?(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
)


class PromQLError(ValueError):
    """An expression this extractor cannot read safely."""


def _strip_noise(expr: str) -> str:
    if "__name__" in expr:
        raise PromQLError(f"selects metrics by __name__, which hides their names: {expr!r}")
    text = _ADAPTER_FIELD.sub("", expr)
    text = _STRING.sub('""', text)
    text = _GRAFANA_VARIABLE.sub("1", text)
    for pattern in (_MATCHERS, _BRACKETS):
        previous = None
        while previous != text:
            previous, text = text, pattern.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for opening, closing in ("()", "{}", "[]"):
        if text.count(opening) != text.count(closing):
            raise PromQLError(f"unbalanced {opening}{closing} in {expr!r}")
    if "{" in text or "[" in text:
        raise PromQLError(f"nested matchers or brackets left in {expr!r}")
    return text


def metric_names(expr: str) -> set[str]:
    """Metric (or recording rule) names an expression reads."""
    text = _strip_noise(expr)
    names: set[str] = set()
    for match in _TOKEN.finditer(text):
        name = match.group("name")
        if name is None:
            continue
        following = text[match.end():].lstrip()
        if following.startswith("("):
            if name not in FUNCTIONS and name not in AGGREGATIONS:
                raise PromQLError(f"unknown function {name!r} in {expr!r}")
            continue
        lowered = name.lower()
        if lowered in KEYWORDS or name in AGGREGATIONS:
            # An aggregation with a trailing clause, e.g. `sum(x) by (job)`, was stripped above.
            continue
        names.add(name)
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.*?)\s*,\s*\w+\s*\)\s*$", re.DOTALL)


def grafana_variable_metric_names(query: str) -> set[str]:
    """Metric names in a Grafana Prometheus variable query (label_values(selector, label))."""
    match = _LABEL_VALUES.match(query)
    if match is not None:
        return metric_names(match.group("selector"))
    if query.strip().startswith(("label_names(", "metrics(", "query_result(")):
        raise PromQLError(f"variable query form not handled: {query!r}")
    return metric_names(query)
