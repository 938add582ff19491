"""Load-test fixtures: the live gateway (and its Triton) of the end-to-end suite."""

from tests.e2e.conftest import gateway, gateway_url  # noqa: F401 - fixtures used by test_locust_e2e
