"""Locust scenarios: a realistic mix of operations and photo sizes, every response checked.

Run it through ``python -m load_tests.locust_run run`` (headless, CSV + HTML,
SLO verdict from ``load_tests/slo.toml``), or directly::

    IMAGESERVE_API_KEY=... locust -f load_tests/locustfile.py --host http://127.0.0.1:8080

The mix is in ``load_tests/traffic_mix.py``: each user deals operations from
its own shuffled deck (every endpoint within any ``sum(OPERATION_WEIGHTS)``
consecutive requests), picks at random a JPEG made from a real photo
(restricted by ``--photo-sizes``) and sometimes ``max_side``. A response passes
only if it is a complete PNG of the expected size and kind with its credit
headers (and, for depth, a valid depth range). Requests are named by
endpoint, so locust's CSV has one row per endpoint.
"""

from __future__ import annotations

import argparse
import itertools
import random

from locust import FastHttpUser, between, events, task
from locust.env import Environment

from imaging.geometry import output_size
from load_tests.operations import OPERATIONS
from load_tests.photos import SIZES, check_sizes, photo_jpeg
from load_tests.png_check import BadResponse
from load_tests.traffic_mix import (
    MAX_SIDE_WEIGHTS,
    PHOTO_WEIGHTS,
    check_response,
    operation_deck,
    request_path,
    weighted_choice,
)


@events.init_command_line_parser.add_listener
def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", env_var="IMAGESERVE_API_KEY", default="", help="API key sent as Bearer token")
    parser.add_argument("--photo-sizes", env_var="IMAGESERVE_PHOTO_SIZES", default=",".join(SIZES),
                        help=f"comma-separated photo sizes to send, from {', '.join(SIZES)}")


def _photo_sizes(environment: Environment) -> list[str]:
    return check_sizes([s.strip() for s in environment.parsed_options.photo_sizes.split(",") if s.strip()])


@events.init.add_listener
def _check_options(environment: Environment, **_kwargs: object) -> None:
    options = environment.parsed_options
    if options is None:  # locust used as a library: its caller checks its own arguments
        return
    if not options.api_key:
        raise SystemExit("set IMAGESERVE_API_KEY (or --api-key) to an API key of the gateway under test")
    try:
        for size in _photo_sizes(environment):
            photo_jpeg(size)  # made once, before the clock starts
    except ValueError as exc:
        raise SystemExit(f"--photo-sizes: {exc}") from None


class PhotoAppUser(FastHttpUser):
    """A photo app's backend: one photo per request, a short pause between requests."""

    wait_time = between(0.0, 1.0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.operations = itertools.cycle(operation_deck(self.rng))
        self.sizes = {name: PHOTO_WEIGHTS[name] for name in _photo_sizes(self.environment)}
        self.headers = {"Authorization": f"Bearer {self.environment.parsed_options.api_key}",
                        "Content-Type": "image/jpeg"}

    @task
    def one_photo(self) -> None:
        operation = OPERATIONS[next(self.operations)]
        size_name = weighted_choice(self.sizes, self.rng)
        max_side = weighted_choice(MAX_SIDE_WEIGHTS, self.rng)
        with self.client.post(request_path(operation, max_side), data=photo_jpeg(size_name), headers=self.headers,
                              name=operation.http_path, catch_response=True) as response:
            try:
                check_response(operation, response, output_size(SIZES[size_name], max_side))
            except BadResponse as exc:
                response.failure(f"{size_name} max_side={max_side}: {exc}")
            else:
                response.success()
