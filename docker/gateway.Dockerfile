# syntax=docker/dockerfile:1.7
# imageserve gateway: `python -m gateway` (FastAPI behind uvicorn, graceful drain on SIGTERM),
# API on 8080, /metrics only on 9090, non-root. Settings are GATEWAY_* variables
# (gateway/settings.py); the Helm chart sets them from its values.
# Build from the repository root:
#   DOCKER_BUILDKIT=1 docker build -f docker/gateway.Dockerfile -t imageserve/gateway:0.1.0 .
# (BuildKit reads docker/gateway.Dockerfile.dockerignore.)
# Python matches pyproject.toml's requires-python (3.11); dependencies are its `gateway` extra
# (exact pins): no ONNX Runtime, ONNX, TFLite, Pillow or Triton server in this image. They come
# hash-locked from docker/requirements/gateway.txt (docker/lock.py writes it from pyproject.toml).

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# gateway.Dockerfile.dockerignore lets only pyproject.toml, the package directories and the lock in.
COPY . ./
# Every distribution of the `gateway` extra (Alembic included) and the build backend, each checked
# against the lock's sha256; then the project alone (the gateway's migration scripts included).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r docker/requirements/gateway.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib/python3.11/site-packages

FROM ${PYTHON_IMAGE}
ARG UID=10001
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_METRICS_PORT=9090
RUN groupadd --system --gid ${UID} imageserve \
    && useradd --system --uid ${UID} --gid ${UID} --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin imageserve
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090
# Kubernetes uses the chart's probes; this serves `docker run` and compose.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['GATEWAY_PORT'], timeout=2)"]
CMD ["python", "-m", "gateway"]
