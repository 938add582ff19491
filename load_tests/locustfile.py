"""Locust scenarios: the mix of ``load_tests/traffic_mix.py``, every response checked.

Run through ``make load`` (``python -m load_tests.locust_run run``: headless, CSV + HTML, SLO verdict), or
``IMAGESERVE_API_KEY=... locust -f load_tests/locustfile.py --host http://127.0.0.1:8080``. The users deal
operations from one shuffled deck (every endpoint within any ``sum(OPERATION_WEIGHTS)`` consecutive requests of
the run, however slow some are), each with a JPEG of a real photo (``--photo-sizes``) and sometimes ``max_side``.
Requests are named by endpoint, so locust's CSV has one row per endpoint.
"""

from __future__ import annotations

import itertools
import random

from locust import FastHttpUser, between, events, task

from imaging.geometry import output_size
from load_tests import traffic_mix
from load_tests.operations import OPERATIONS
from load_tests.png_check import BadResponse
from load_tests.traffic_mix import SIZES, check_sizes, photo_jpeg


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("--api-key", env_var="IMAGESERVE_API_KEY", default="", help="API key sent as Bearer token")
    parser.add_argument("--photo-sizes", env_var="IMAGESERVE_PHOTO_SIZES", default=",".join(SIZES),
                        help=f"comma-separated photo sizes to send, from {', '.join(SIZES)}")


@events.init.add_listener
def _check_options(environment, **_kwargs: object) -> None:  # noqa: ANN001
    options = environment.parsed_options
    if options is not None:  # None: locust used as a library, its caller checks its own arguments
        if not options.api_key:
            raise SystemExit("set IMAGESERVE_API_KEY (or --api-key) to an API key of the gateway under test")
        try:
            sizes = check_sizes([s.strip() for s in options.photo_sizes.split(",") if s.strip()])
        except ValueError as exc:
            raise SystemExit(f"--photo-sizes: {exc}") from None
        options.sizes = {size: traffic_mix.PHOTO_WEIGHTS[size] for size in sizes}
        for size in sizes:
            photo_jpeg(size)  # made once, before the clock starts


class PhotoAppUser(FastHttpUser):
    """A photo app's backend: one photo per request, a short pause between requests."""

    wait_time = between(0.0, 1.0)
    operations = itertools.cycle(traffic_mix.operation_deck(random.Random()))  # shared by the users (gevent)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.headers = {"Authorization": f"Bearer {self.environment.parsed_options.api_key}",
                        "Content-Type": "image/jpeg"}

    @task
    def one_photo(self) -> None:
        operation = OPERATIONS[next(self.operations)]
        size = traffic_mix.weighted_choice(self.environment.parsed_options.sizes, self.rng)
        max_side = traffic_mix.weighted_choice(traffic_mix.MAX_SIDE_WEIGHTS, self.rng)
        with self.client.post(traffic_mix.request_path(operation, max_side), data=photo_jpeg(size),
                              headers=self.headers, name=operation.http_path, catch_response=True) as response:
            try:
                traffic_mix.check_answer(operation, response.status_code, response.headers or {},
                                         response.content or b"", output_size(SIZES[size], max_side))
            except BadResponse as exc:
                response.failure(f"{size} max_side={max_side}: {exc}")
            else:
                response.success()
