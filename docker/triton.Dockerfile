# syntax=docker/dockerfile:1.7
# imageserve Triton: NGC Triton Inference Server 26.10 (TensorRT and trtexec, onnxruntime,
# openvino and tensorrt backends; Ubuntu 24.04 with Python 3.12) plus what the python-backend
# models and the model build step need, with pyproject.toml's exact pins:
#   - a Python 3.12 venv in /opt/imageserve/venv (the image's own Python, the one its
#     python-backend stub is built for);
#   - this repository's packages with the `serving` extra (python-backend models: numpy, pillow,
#     onnxruntime, openvino) and the `build` extra (converters: onnx, tflite, the model-config schema),
#     hash-locked in docker/requirements/triton.txt (docker/lock.py writes it from pyproject.toml).
# No version is written here a second time. Why 26.10 and not the 24.10 of earlier charts:
# docs/robustness.md ("Triton's own API").
# Build from the repository root:
#   DOCKER_BUILDKIT=1 docker build -f docker/triton.Dockerfile -t imageserve/triton:0.1.0 .
# (BuildKit reads docker/triton.Dockerfile.dockerignore.)

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:26.10-py3
FROM ${TRITON_IMAGE}

USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# venv support for the image's Python 3.12, and npm for the converters' `npm pack` of the source
# models. Their versions follow the pinned base image's package snapshot, so they are not
# pinned a second time here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12-venv npm \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/imageserve/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/imageserve
# triton.Dockerfile.dockerignore lets only pyproject.toml, the package directories, the
# python-backend model code and the lock in.
COPY . ./
# Every distribution of the serving and build extras and the build backend, each checked against
# the lock's sha256, then our packages alone; the image's own python-backend stub (built for its
# Python 3.12) runs the models.
RUN python3.12 -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --require-hashes --no-deps -r docker/requirements/triton.txt \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-deps --no-build-isolation . \
    && "${VIRTUAL_ENV}/bin/python" -m compileall -q "${VIRTUAL_ENV}/lib/python3.12/site-packages" /opt/imageserve

# The stub embeds the image's Python 3.12 and imports the venv's packages through PYTHONPATH; the
# build step runs the venv's python; trtexec for the build step.
ENV PATH=/opt/imageserve/venv/bin:${PATH}:/usr/src/tensorrt/bin \
    PYTHONPATH=/opt/imageserve/venv/lib/python3.12/site-packages

# triton-server (uid 1000) is the NGC image's unprivileged user.
USER 1000:1000
EXPOSE 8001 8002
# Kubernetes uses the chart's probes; this serves `docker run` and compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, tritonclient.grpc as g; sys.exit(0 if g.InferenceServerClient('127.0.0.1:8001').is_server_ready(client_timeout=4) else 1)"]
# Removes a crashed server's shared-memory regions (they hold photos) and sets umask 077, then execs tritonserver.
ENTRYPOINT ["/opt/imageserve/docker/triton-entrypoint.sh"]
CMD ["--model-repository=/models", "--strict-readiness=true", "--allow-http=false"]
