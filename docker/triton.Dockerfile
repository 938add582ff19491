# syntax=docker/dockerfile:1.7
# imageserve Triton: NGC Triton Inference Server 24.10 (Triton 2.51, TensorRT and trtexec,
# onnxruntime and tensorrt backends) plus what the python-backend models and the model build
# step need, with pyproject.toml's exact pins:
#   - Python 3.11 in /opt/imageserve/venv: the project requires 3.11 and pillow/onnxruntime
#     publish no wheels for the image's own Python 3.10;
#   - the Python 3.11 python-backend stub of Triton 2.51, from the nvidia-pytriton wheel;
#   - numpy, pillow, onnxruntime (python-backend models), onnx, tflite, flatbuffers, protobuf,
#     tritonclient[grpc] and grpcio (converters: the model-config schema), and this repository's
#     packages (imaging, triton_models, converters, ...).
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
# triton.Dockerfile.dockerignore lets only pyproject.toml, the package directories and the
# python-backend model code in.
COPY . ./
# Our packages without their dependency list, then only the pinned dependencies the
# python-backend models and the converters use (versions equal pyproject.toml's), then the
# Python 3.11 python-backend stub: the backend runs it from its own directory, and the stub
# finds its libraries through an $ORIGIN-relative RPATH, which a symbolic link keeps.
RUN python3.11 -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-deps . \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir \
        numpy==1.26.4 \
        pillow==13.0.0 \
        onnxruntime==1.31.1 \
        onnx==1.23.2 \
        tflite==2.18.0 \
        flatbuffers==25.12.19 \
        protobuf==6.33.6 \
        "tritonclient[grpc]==2.73.0" \
        grpcio==1.85.1 \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-deps nvidia-pytriton==0.7.0 \
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
CMD ["tritonserver", "--model-repository=/models", "--strict-readiness=true"]
