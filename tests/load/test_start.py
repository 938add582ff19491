"""The bench's start section against the real stack: ready, first and steady requests, and Ctrl-C stops it all."""

import httpx
import pytest

from load_tests.bench import measure_start
from load_tests.operations import OPERATIONS
from load_tests.services import start_command, started_stack
from tests.load.test_report import RUN

pytestmark = pytest.mark.e2e


def test_start_section_times_ready_and_first_requests_then_stops_the_stack() -> None:
    operation = next(iter(OPERATIONS.values()))
    cold = measure_start(RUN, [operation], "0.3MP", repeats=1, steady=2)["data"]
    assert cold["command"] in ("make -s run", "python -m stack")
    assert len(cold["ready_s"]) == 1 and 0 < cold["ready_s"][0] < 120
    assert len(cold["first_ms"][operation.name]) == 1 and len(cold["steady_ms"][operation.name]) == 2
    with started_stack(start_command()) as (port, _, _):
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    with pytest.raises(httpx.TransportError):  # the gateway went with the Ctrl-C
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
