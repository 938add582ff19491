"""Chart test helpers: tool paths, rendering per values scenario, manifest walking."""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = REPO_ROOT / "helm"
CHART_DIR = HELM_DIR / "imageserve"
TOOLS_DIR = REPO_ROOT / "build" / "tools"
DOCKER_DIR = REPO_ROOT / "docker"
INSTALL_HINT = "install the chart tooling with: bash helm/tools/install.sh"
RELEASE = "rel"
NAMESPACE = "imageserve"
CI_VALUES = sorted(CHART_DIR.glob("ci/*-values.yaml"))
# Scenario name -> values files: every ci/*-values.yaml ("default": the chart's defaults plus the
# secrets an install must set).
SCENARIOS = {path.name.removesuffix("-values.yaml"): (path,) for path in CI_VALUES}
DEFAULT_VALUES = SCENARIOS["default"]


def require_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(f"Python module {name!r} is missing from the test environment; {INSTALL_HINT}", pytrace=False)


def tool(name: str) -> Path:
    """Path of a tool that helm/tools/install.sh installs; fails (never skips) without it."""
    path = TOOLS_DIR / name
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing; {INSTALL_HINT}", pytrace=False)
    return path


@functools.cache
def _helm_home() -> str:
    return tempfile.mkdtemp(prefix="imageserve-helm-home-")


def helm_env() -> dict[str, str]:
    home = _helm_home()
    env = dict(os.environ)
    env.update(
        HELM_CACHE_HOME=f"{home}/cache",
        HELM_CONFIG_HOME=f"{home}/config",
        HELM_DATA_HOME=f"{home}/data",
    )
    return env


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(tool("helm")), *args], capture_output=True, text=True, env=helm_env(), timeout=120
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return result


def template_args(values: tuple[Path, ...] = (), *extra: str) -> list[str]:
    args = ["template", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    return [*args, *extra]


@dataclass(frozen=True)
class Rendered:
    scenario: str
    text: str
    docs: tuple[dict, ...]

    def of_kind(self, kind: str) -> list[dict]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        matches = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(matches) == 1, f"{self.scenario}: expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def has(self, kind: str, name: str) -> bool:
        return any(doc["metadata"]["name"] == name for doc in self.of_kind(kind))


@functools.cache
def render(scenario: str) -> Rendered:
    yaml = require_module("yaml")
    text = run_helm(*template_args(SCENARIOS[scenario])).stdout
    docs = tuple(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(scenario, text, docs)


@functools.cache
def render_with(*args: str) -> Rendered:
    """The chart rendered with extra `helm template` arguments (--set, --set-json, --values...)."""
    yaml = require_module("yaml")
    text = run_helm(*template_args(DEFAULT_VALUES, *args)).stdout
    docs = tuple(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(" ".join(args), text, docs)


def fullname(component: str | None = None) -> str:
    base = f"{RELEASE}-imageserve"
    return f"{base}-{component}" if component else base


def pod_specs(rendered: Rendered) -> list[tuple[str, dict]]:
    """(description, pod spec) of every workload and pod in a render."""
    specs = []
    for doc in rendered.docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            specs.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            specs.append((f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif kind == "Pod":
            specs.append((f"{kind}/{name}", doc["spec"]))
    return specs


def containers(spec: dict) -> list[tuple[str, dict]]:
    """(kind of container, container) for init and regular containers of a pod spec."""
    return [("initContainer", c) for c in spec.get("initContainers", [])] + [
        ("container", c) for c in spec.get("containers", [])
    ]


def load_values(*paths: Path) -> dict:
    """Chart values.yaml merged with values files, the way helm merges maps."""
    yaml = require_module("yaml")

    def merge(base: dict, override: dict) -> dict:
        out = dict(base)
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    for path in paths:
        values = merge(values, yaml.safe_load(path.read_text()) or {})
    return values
