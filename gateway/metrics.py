"""Prometheus metrics of the gateway (registry passed in; bounded label sets)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATUS_CLASSES = ("2xx", "4xx", "5xx")
MEGAPIXEL_BUCKETS = (0.1, 0.3, 0.5, 1, 2, 3, 5, 8, 12, 16, 24, 40)


class GatewayMetrics:
    """Label values are bounded: ``routes`` are the product's operations, ``reasons`` the error classes'
    rejection reasons; each series exists (at zero) from the start, so dashboards and alerts see it."""

    def __init__(self, registry: CollectorRegistry, routes: tuple[str, ...], reasons: tuple[str, ...]) -> None:
        self.registry = registry
        self.requests = Counter(
            "gateway_requests", "Requests answered, by route and status class.",
            ["route", "status_class"], registry=registry,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds", "Time from request start to response, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.triton_duration = Histogram(
            "gateway_triton_duration_seconds", "Time spent in the Triton call, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.in_flight = Gauge("gateway_in_flight_requests", "Image requests being served.", registry=registry)
        self.input_megapixels = Histogram(
            "gateway_input_megapixels", "Size of accepted input photos.",
            ["route"], buckets=MEGAPIXEL_BUCKETS, registry=registry,
        )
        self.request_bytes = Counter(
            "gateway_request_bytes", "Image bytes received, by route.", ["route"], registry=registry,
        )
        self.response_bytes = Counter(
            "gateway_response_bytes", "Image bytes sent, by route.", ["route"], registry=registry,
        )
        self.rejections = Counter(
            "gateway_rejections", "Requests refused before or during inference, by reason "
            "(auth, rate, quota, bad_input, overload, client_closed).",
            ["reason"], registry=registry,
        )
        self.credits_charged = Counter(
            "gateway_credits_charged", "Credits committed to the usage ledger, by operation.",
            ["operation"], registry=registry,
        )
        self.cancelled_inferences = Counter(
            "gateway_cancelled_inferences", "Triton calls cancelled because the client went away.", registry=registry,
        )
        self.swept_credits = Counter(
            "gateway_swept_credits", "Credits of abandoned reservations (a gateway died mid-request) given back.",
            registry=registry,
        )
        self.ledger_write_errors = Counter(
            "gateway_ledger_write_errors", "Ledger rows that could not be written (their credits were released).",
            registry=registry,
        )
        for route in routes:
            for metric in (self.request_duration, self.triton_duration, self.input_megapixels, self.request_bytes,
                           self.response_bytes, self.credits_charged):
                metric.labels(route)
            for status_class in STATUS_CLASSES:
                self.requests.labels(route, status_class)
        for reason in reasons:
            self.rejections.labels(reason)
