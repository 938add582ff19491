"""Container images: hadolint, pinned bases, non-root users, health checks, and agreement with
pyproject.toml and the chart. (No Docker engine runs here, so nothing is built.)"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from .chart import CHART_DIR, DOCKER_DIR, REPO_ROOT, load_values, require_module, tool

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
GATEWAY = DOCKER_DIR / "gateway.Dockerfile"
TRITON = DOCKER_DIR / "triton.Dockerfile"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


def parse(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, continuation lines joined."""
    instructions = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    assert not pending, f"{path.name}: dangling line continuation"
    return instructions


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args = {}
    for instruction in instructions:
        if instruction.keyword == "ARG" and instruction.stage == -1:
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
    return args


def base_images(path: Path) -> list[str]:
    instructions = parse(path)
    args = global_args(instructions)
    stages: set[str] = set()
    images = []
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = instruction.arguments.split()
        image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], words[0])
        if image not in stages:
            images.append(image)
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2])
    return images


def final_stage(path: Path) -> list[Instruction]:
    instructions = parse(path)
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


def pyproject_pins() -> dict[str, str]:
    pins = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([A-Za-z0-9_.+-]+)", requirement)
        assert match, f"pyproject.toml dependency is not an exact pin: {requirement}"
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_installs(path: Path) -> list[list[str]]:
    """Argument lists of every `pip install` in the Dockerfile's RUN instructions."""
    installs = []
    for instruction in parse(path):
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.arguments):
            words = shlex.split(command)
            for index, word in enumerate(words[:-1]):
                if (word == "pip" or word.endswith("/pip")) and words[index + 1] == "install":
                    installs.append(words[index + 2 :])
    return installs


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(path: Path) -> None:
    result = subprocess.run([str(tool("hadolint")), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {"gateway.Dockerfile", "triton.Dockerfile"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_to_exact_versions(path: Path) -> None:
    images = base_images(path)
    assert images
    for image in images:
        assert "@sha256:" in image or re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
        tag = image.rsplit(":", 1)[1]
        assert "latest" not in tag, image
        assert re.match(r"\d+\.\d+", tag), f"{image}: not an exact version tag"
        if image.startswith("python:"):
            assert re.match(r"\d+\.\d+\.\d+-", tag), f"{image}: pin the patch release"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_numeric_non_root_user_with_a_healthcheck(path: Path) -> None:
    final = final_stage(path)
    users = [instruction.arguments for instruction in final if instruction.keyword == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]
    assert any(instruction.keyword == "HEALTHCHECK" for instruction in final)
    assert "latest" not in path.read_text()


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_pip_installs_use_the_pyproject_pins(path: Path) -> None:
    pins = pyproject_pins()
    installs = pip_installs(path)
    assert installs, "no pip install"
    for arguments in installs:
        packages = [word for word in arguments if not word.startswith("-")]
        assert packages, arguments
        for package in packages:
            if package == ".":
                continue  # the project itself: pyproject.toml's exact pins
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[\w,-]+\])?==([A-Za-z0-9_.+-]+)", package)
            assert match, f"{path.name}: {package} is not pinned"
            name, version = _normalise(match.group(1)), match.group(2)
            assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert pins[name] == version, f"{path.name}: {name}=={version}, pyproject.toml pins {pins[name]}"


def test_gateway_image_matches_python_requirement_and_chart() -> None:
    packaging_specifiers = require_module("packaging.specifiers")
    (image,) = set(base_images(GATEWAY))
    python_version = re.match(r"python:(\d+\.\d+\.\d+)-", image).group(1)
    requires = packaging_specifiers.SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert python_version in requires, f"{image} does not satisfy requires-python {requires}"
    assert f"/python{python_version.rsplit('.', 1)[0]}/" in GATEWAY.read_text()
    final = final_stage(GATEWAY)
    (cmd,) = [i.arguments for i in final if i.keyword == "CMD"]
    import json

    command = json.loads(cmd)
    assert command == ["python", "-m", "gateway"], "the same entry point as the chart's gateway container"
    values = load_values()["gateway"]
    env = image_env(final)
    # `docker run` listens on all interfaces, on the chart's ports, with /metrics off the API port.
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_PORT"] == str(values["port"])
    assert env["GATEWAY_METRICS_PORT"] == str(values["metricsPort"])
    (expose,) = [i.arguments for i in final if i.keyword == "EXPOSE"]
    assert sorted(expose.split()) == sorted([str(values["port"]), str(values["metricsPort"])])
    (user,) = [i.arguments for i in final if i.keyword == "USER"]
    assert user == f"{values['runAsUser']}:{values['runAsGroup']}"
    assert any(i.keyword == "RUN" and re.search(r"pip install (--no-cache-dir )?\.(\s|$)", i.arguments) for i in parse(GATEWAY))


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """Variables the ENV instructions (KEY=value form) set."""
    env = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.arguments):
                name, equals, value = word.partition("=")
                assert equals, f"ENV {instruction.arguments}: use the KEY=value form"
                env[name] = value
    return env


def runtime_closure() -> set[str]:
    """pyproject.toml's runtime dependencies and what they require in turn (extras honoured), as
    installed in the test environment: what `pip install .` puts into the gateway image."""
    import importlib.metadata

    requirements = require_module("packaging.requirements")
    pending = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        parsed = requirements.Requirement(requirement)
        pending.append((_normalise(parsed.name), frozenset(parsed.extras)))
    seen: dict[str, set[str]] = {}
    while pending:
        name, extras = pending.pop()
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            parsed = requirements.Requirement(line)
            wanted = not parsed.marker or any(parsed.marker.evaluate({"extra": extra}) for extra in {"", *seen[name]})
            if wanted:
                pending.append((_normalise(parsed.name), frozenset(parsed.extras)))
    return set(seen)


def test_gateway_image_installs_every_runtime_dependency_the_gateway_imports() -> None:
    """The gateway image installs the project (`pip install .`), so every third-party module that
    gateway/ imports (Alembic for the migrations, among others) must come with pyproject.toml's
    runtime dependencies, not only with the dev extra or the test environment."""
    import ast
    import importlib.metadata
    import sys

    pins = pyproject_pins()
    installed = runtime_closure()
    assert set(pins) <= installed
    module_to_distributions = importlib.metadata.packages_distributions()
    own = {"gateway", "converters", "imaging", "triton_models", "stack", "load_tests"}
    missing = {}
    sources = sorted((REPO_ROOT / "gateway").rglob("*.py"))
    assert any(path.parent.name == "versions" for path in sources), "the migration scripts are part of the gateway"
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                if root in sys.stdlib_module_names or root in own or root == "__future__":
                    continue
                distributions = {_normalise(d) for d in module_to_distributions.get(root, [root])}
                if not distributions & installed:
                    missing.setdefault(root, set()).add(str(path.relative_to(REPO_ROOT)))
    assert not missing, f"gateway imports modules pyproject.toml's runtime dependencies do not bring: {missing}"
    assert "alembic" in pins, "gateway/migrate.py runs Alembic at start-up"
    assert any(arguments and arguments[-1] == "." for arguments in pip_installs(GATEWAY)), (
        "the gateway image must install the project itself, with its pins"
    )


def test_triton_image_matches_chart_and_python_requirement() -> None:
    (image,) = base_images(TRITON)
    chart = (CHART_DIR / "Chart.yaml").read_text()
    assert f"imageserve/triton-base-image: {image}" in chart
    assert image == "nvcr.io/nvidia/tritonserver:24.10-py3"
    values = load_values()["triton"]
    (user,) = [i.arguments for i in final_stage(TRITON) if i.keyword == "USER"][-1:]
    assert user == f"{values['runAsUser']}:{values['runAsGroup']}"
    text = TRITON.read_text()
    requires = PYPROJECT["project"]["requires-python"]
    minor = re.search(r">=\s*(\d+\.\d+)", requires).group(1)
    assert f"python{minor} -m venv" in text
    assert f"python_backend_stubs/{minor}/triton_python_backend_stub" in text
    installed = triton_image_distributions()
    assert {"numpy", "pillow", "onnxruntime", "nvidia-pytriton"} <= installed
    exposed = next(i.arguments for i in final_stage(TRITON) if i.keyword == "EXPOSE").split()
    assert sorted(int(p) for p in exposed) == sorted(values["ports"].values())


def triton_image_distributions() -> set[str]:
    """Distributions the Triton image installs by name (normalised, extras dropped)."""
    return {
        _normalise(re.sub(r"\[.*\]", "", package.split("==")[0]))
        for arguments in pip_installs(TRITON)
        for package in arguments
        if "==" in package
    }


# Modules that run in other environments, never in the Triton image: the Depth Anything hub
# export (.venv-hub) and MediaPipe's reference runtime (.venv-mediapipe).
NOT_IN_TRITON_IMAGE = {"converters/hub_depth_anything.py", "converters/mediapipe_reference.py"}


def test_triton_image_has_every_dependency_the_model_code_imports() -> None:
    """converters (the build step), imaging and triton_models (python-backend models) import only
    the standard library, this repository and distributions the Triton image installs."""
    import ast
    import importlib.metadata
    import sys

    own = {"converters", "imaging", "triton_models", "gateway", "stack", "load_tests"}
    provided = {"triton_python_backend_utils"}  # injected by Triton's python backend
    module_to_distributions = importlib.metadata.packages_distributions()
    installed = triton_image_distributions()
    missing = {}
    for package in ("converters", "imaging", "triton_models"):
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            if str(path.relative_to(REPO_ROOT)) in NOT_IN_TRITON_IMAGE:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    roots = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    roots = [node.module.split(".")[0]]
                else:
                    continue
                for root in roots:
                    if root in sys.stdlib_module_names or root in own | provided or root == "__future__":
                        continue
                    distributions = {_normalise(d) for d in module_to_distributions.get(root, [root])}
                    if not distributions & installed:
                        missing.setdefault(root, set()).add(str(path.relative_to(REPO_ROOT)))
    assert not missing, f"imported but not installed in docker/triton.Dockerfile: {missing}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_lets_in_every_package_of_the_project(path: Path) -> None:
    ignore = Path(f"{path}.dockerignore")
    assert ignore.exists(), f"{ignore.name} keeps the build context small"
    lines = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "allow-list: exclude everything, then let sources in"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    packages = {pattern.rstrip("*").rstrip(".") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", *packages} <= allowed
    if path == TRITON:
        assert "model_repository" in allowed
    assert not allowed & {".venv", "build", ".git"}
