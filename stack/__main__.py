"""``python -m stack``: build the model repository if needed, run Triton and the gateway.

Runs in the foreground; Ctrl-C (or SIGTERM) stops the gateway, then Triton.
A Triton that dies, or loses a python-backend stub (Triton 2.51 neither restarts a dead stub nor
reports its model unready), is restarted.

``$IMAGESERVE_DEPTH_MODEL=depth_anything`` (converters/catalog.py) serves Depth Anything V2 Small as the
``depth`` model, from a repository of its own, ``build/model_repository-depth_anything``: model_repository,
whose configs are committed, stays FastDepth's. It needs the hub venv (``IMAGESERVE_DEPTH_MODEL=depth_anything
make run`` uses .venv-hub) and, the first time, network access to the Hugging Face hub.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from converters.build import build_repository
from converters.catalog import DEFAULT_DEPTH_MODEL, selected_depth_model
from converters.errors import ConverterError
from stack.gateway import start_gateway
from stack.processes import stop_process
from stack.triton import TritonPorts, TritonServer, TritonStartError

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "model_repository"
DEV_KEY_FILE = Path("build") / "dev-api-key"
log = logging.getLogger("stack")


def local_api_key() -> str:
    """The admin key of a local stack: $GATEWAY_BOOTSTRAP_API_KEY, else one made once in build/dev-api-key."""
    key = os.environ.get("GATEWAY_BOOTSTRAP_API_KEY")
    if key:
        return key
    if not DEV_KEY_FILE.exists():
        DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return DEV_KEY_FILE.read_text().strip()


def repository_for(depth_model: str) -> Path:
    """model_repository for the default depth model, a repository under build/ for an opt-in one."""
    return REPOSITORY if depth_model == DEFAULT_DEPTH_MODEL else ROOT / "build" / f"model_repository-{depth_model}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("TRITON_HTTP_PORT", 8000)))
    parser.add_argument("--grpc-port", type=int, default=int(os.environ.get("TRITON_GRPC_PORT", 8001)))
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("TRITON_METRICS_PORT", 8002)))
    parser.add_argument("--gateway-host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    parser.add_argument("--gateway-port", type=int, default=int(os.environ.get("GATEWAY_PORT", 8080)))
    parser.add_argument("--log", type=Path, default=Path("build/triton.log"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack %(message)s")

    started = time.monotonic()
    try:
        depth_model = selected_depth_model()
        repository = repository_for(depth_model)
        converted = build_repository(repository, "cpu", depth_model=depth_model)
    except ConverterError as exc:
        log.error("%s", exc)
        return 1
    if converted:
        log.info("converted models: %s", ", ".join(converted))
    if depth_model != DEFAULT_DEPTH_MODEL:
        log.info("depth model: %s (repository %s)", depth_model, repository)
    triton = TritonServer(repository, TritonPorts(args.http_port, args.grpc_port, args.metrics_port), args.log)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    gateway = None
    try:
        triton.start()
        triton.wait_ready()
        log.info("triton ready on 127.0.0.1:%d (gRPC) after %.1f s; log: %s",
                 args.grpc_port, time.monotonic() - started, args.log)
        gateway = start_gateway(args.gateway_host, args.gateway_port, args.grpc_port,
                                {"GATEWAY_BOOTSTRAP_API_KEY": local_api_key()})
        log.info("gateway on http://%s:%d (Ctrl-C stops both); demo page http://%s:%d/demo, API docs /docs; "
                 "admin API key: %s", args.gateway_host, args.gateway_port, args.gateway_host, args.gateway_port,
                 "$GATEWAY_BOOTSTRAP_API_KEY" if os.environ.get("GATEWAY_BOOTSTRAP_API_KEY") else DEV_KEY_FILE)
        while not stopping:
            time.sleep(0.2)
            if reason := triton.why_broken():
                log.error("%s; restarting triton", reason)
                triton.restart()
                log.info("triton ready again")
            if gateway.poll() is not None:
                log.error("gateway exited with code %s", gateway.returncode)
                return 1
    except TritonStartError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if gateway is not None:
            stop_process(gateway)
        triton.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
