# syntax=docker/dockerfile:1.7
# imageserve gateway: FastAPI behind uvicorn, port 8080, non-root.
# Build from the repository root:
#   DOCKER_BUILDKIT=1 docker build -f docker/gateway.Dockerfile -t imageserve/gateway:0.1.0 .
# (BuildKit reads docker/gateway.Dockerfile.dockerignore.)
# Python matches pyproject.toml's requires-python (3.11); dependencies are its exact pins.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# gateway.Dockerfile.dockerignore lets only pyproject.toml and the package directories in.
COPY . ./
# `pip install .` installs the project with the exact pins of pyproject.toml.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib/python3.11/site-packages

FROM ${PYTHON_IMAGE}
ARG UID=10001
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid ${UID} imageserve \
    && useradd --system --uid ${UID} --gid ${UID} --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin imageserve
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Kubernetes uses the chart's probes; this serves `docker run` and compose.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["uvicorn", "gateway.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8080"]
