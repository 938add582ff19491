"""Container images: hadolint, pinned bases, non-root users, health checks, and agreement with
pyproject.toml and the chart. (No Docker engine runs here, so nothing is built.)

The images install one extra of the project each (pyproject.toml: one extra per deployable) and
write no version of their own: every distribution from a hash lock that docker/lock.py resolves
from pyproject.toml (docker/requirements/<image>.txt, `--require-hashes --no-deps`), then the
project alone. The gateway image: the `gateway` extra, without any inference runtime; the Triton
image: `serving,build`, in a venv of the NGC image's own Python, whose python-backend stub runs
the models."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .chart import CHART_DIR, DOCKER_DIR, REPO_ROOT, load_values, require_module, tool

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
GATEWAY = DOCKER_DIR / "gateway.Dockerfile"
TRITON = DOCKER_DIR / "triton.Dockerfile"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]["name"]
EXTRAS: dict[str, list[str]] = PYPROJECT["project"].get("optional-dependencies", {})
# This repository's top-level packages (pyproject.toml's setuptools include patterns).
OWN_PACKAGES = {
    pattern.rstrip("*").rstrip(".") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
}
# What must never reach the gateway image: model runtimes, model formats, the image decoder, Triton.
NOT_IN_GATEWAY_IMAGE = {"onnxruntime", "onnx", "tflite", "flatbuffers", "pillow", "nvidia-pytriton"}


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


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


PIN = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(?:\[(?P<extras>[^\]]*)\])?==(?P<version>[A-Za-z0-9_.+!-]+)")
SELF = re.compile(rf"{re.escape(PROJECT)}\[(?P<extras>[^\]]+)\]")


def _extra_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def project_requirements(extras: Iterable[str]) -> list[str]:
    """The exact pins `pip install .[extras]` asks for: the base dependencies and those extras, with
    the extras' references to other extras of the project (`imageserve[gateway,...]`) followed."""
    requirements = list(PYPROJECT["project"]["dependencies"])
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        assert extra in EXTRAS, f"pyproject.toml has no extra {extra!r}"
        for requirement in EXTRAS[extra]:
            reference = SELF.fullmatch(requirement)
            if reference:
                pending += _extra_names(reference["extras"])
            else:
                requirements.append(requirement)
    return requirements


def all_pins() -> dict[str, set[str]]:
    """Every pin of the base dependencies and the extras: distribution -> the versions it is pinned at."""
    pins: dict[str, set[str]] = {}
    for requirement in project_requirements(EXTRAS):
        match = PIN.fullmatch(requirement)
        assert match, f"pyproject.toml: {requirement} is not an exact pin"
        pins.setdefault(_normalise(match["name"]), set()).add(match["version"])
    return pins


@dataclass(frozen=True)
class PipInstall:
    arguments: tuple[str, ...]
    locks: tuple[Path, ...]  # the -r files
    project: bool  # `.`: the project itself
    unresolved: tuple[str, ...]  # arguments that are neither the project nor a lock

    def has(self, *flags: str) -> bool:
        return set(flags) <= set(self.arguments)


def pip_installs(path: Path) -> list[PipInstall]:
    """Every `pip install` in the Dockerfile's RUN instructions."""
    installs = []
    for instruction in parse(path):
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", instruction.arguments):
            words = shlex.split(command)
            for index, word in enumerate(words[:-1]):
                if (word == "pip" or word.endswith("/pip")) and words[index + 1] == "install":
                    installs.append(_pip_install(words[index + 2 :]))
    return installs


def _pip_install(arguments: list[str]) -> PipInstall:
    locks, unresolved, project = [], [], False
    words = iter(arguments)
    for argument in words:
        if argument == "-r":
            locks.append(REPO_ROOT / next(words))
        elif argument == ".":
            project = True
        elif not argument.startswith("-"):
            unresolved.append(argument)
    return PipInstall(tuple(arguments), tuple(locks), project, tuple(unresolved))


@dataclass(frozen=True)
class Lock:
    python: str
    extras: tuple[str, ...]
    pins: dict[str, str]  # distribution -> version
    hashes: dict[str, list[str]]


def read_lock(path: Path) -> Lock:
    text = path.read_text()
    python = re.search(r"^# python-version: (\S+)$", text, re.M)[1]
    extras = tuple(_extra_names(re.search(r"^# extras: (\S+)$", text, re.M)[1]))
    pins, hashes = {}, {}
    for entry in re.split(r"\n(?=[a-z0-9])", "\n".join(line for line in text.splitlines() if not line.startswith("#"))):
        words = entry.replace("\\\n", " ").split()
        name, _, version = words[0].partition("==")
        pins[name] = version
        hashes[name] = [word.removeprefix("--hash=sha256:") for word in words[1:] if word.startswith("--hash=sha256:")]
    return Lock(python, extras, pins, hashes)


def image_lock(path: Path) -> Lock:
    (install,) = [install for install in pip_installs(path) if install.locks]
    (lock,) = install.locks
    return read_lock(lock)


def _requirement_name(requirement: str) -> tuple[str, frozenset[str]]:
    parsed = require_module("packaging.requirements").Requirement(requirement)
    return _normalise(parsed.name), frozenset(parsed.extras)


def closure(requirements: Iterable[str]) -> set[str]:
    """The distributions these requirements install, with what they require in turn (extras and
    environment markers honoured), as the test environment's installed metadata says (.[dev] holds
    every extra)."""
    requirements_module = require_module("packaging.requirements")
    pending = [_requirement_name(requirement) for requirement in requirements]
    seen: dict[str, set[str]] = {}
    while pending:
        name, extras = pending.pop()
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed in the test environment; install the project with .[dev]")
        for line in requires:
            parsed = requirements_module.Requirement(line)
            wanted = not parsed.marker or any(parsed.marker.evaluate({"extra": extra}) for extra in {"", *seen[name]})
            if wanted:
                pending.append((_normalise(parsed.name), frozenset(parsed.extras)))
    return set(seen)


def image_distributions(path: Path) -> set[str]:
    """The distributions the image's pip installs put into it: its lock's."""
    return set(image_lock(path).pins)


def third_party_imports(paths: Iterable[Path], provided: set[str] = frozenset()) -> dict[str, set[str]]:
    """Top-level modules imported by these files that are neither the standard library, this
    repository's packages nor `provided`: module -> the files importing it."""
    imports: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                if root in sys.stdlib_module_names or root in OWN_PACKAGES | provided or root == "__future__":
                    continue
                imports.setdefault(root, set()).add(str(path.relative_to(REPO_ROOT)))
    return imports


def missing_distributions(imports: dict[str, set[str]], installed: set[str]) -> dict[str, set[str]]:
    """The imported modules that no installed distribution provides."""
    module_to_distributions = importlib.metadata.packages_distributions()
    return {
        module: files
        for module, files in imports.items()
        if not {_normalise(d) for d in module_to_distributions.get(module, [module])} & installed
    }


def sources(*packages: str, exclude: frozenset[str] = frozenset()) -> list[Path]:
    paths = [path for package in packages for path in sorted((REPO_ROOT / package).rglob("*.py"))]
    return [path for path in paths if str(path.relative_to(REPO_ROOT)) not in exclude]


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


def test_pyproject_pins_are_exact_and_agree_across_extras() -> None:
    """Every requirement is an exact pin or a reference to other extras of the project, and a
    distribution pinned in several extras has one version."""
    assert {"gateway", "serving", "build", "bench", "dev"} <= set(EXTRAS)
    for extra, requirements in {"dependencies": PYPROJECT["project"]["dependencies"], **EXTRAS}.items():
        for requirement in requirements:
            reference = SELF.fullmatch(requirement)
            if reference:
                assert set(_extra_names(reference["extras"])) <= set(EXTRAS) - {extra}, f"{extra}: {requirement}"
            else:
                assert PIN.fullmatch(requirement), f"pyproject.toml {extra}: {requirement} is not an exact pin"
    disagreeing = {name: sorted(versions) for name, versions in all_pins().items() if len(versions) > 1}
    assert not disagreeing, f"pinned at different versions in different extras: {disagreeing}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_install_the_hash_locked_distributions_then_the_project_alone(path: Path) -> None:
    """No second list of pins and nothing unverified: the lock with every hash required, then the
    project without its dependencies or a build environment fetched at build time."""
    locked, project = pip_installs(path)
    assert not locked.unresolved and not project.unresolved, (locked.arguments, project.arguments)
    assert locked.has("--require-hashes", "--no-deps") and not locked.project
    assert [lock.relative_to(REPO_ROOT) for lock in locked.locks] == [Path(f"docker/requirements/{path.stem}.txt")]
    assert project.project and project.has("--no-deps", "--no-build-isolation") and not project.locks
    ignore = Path(f"{path}.dockerignore").read_text().splitlines()
    assert f"!docker/requirements/{path.stem}.txt" in ignore, "the lock is part of the build context"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_locks_hold_the_pyproject_pins_their_dependencies_and_a_hash_each(path: Path) -> None:
    lock = image_lock(path)
    requirements = project_requirements(lock.extras)
    for requirement in requirements:
        match = PIN.fullmatch(requirement)
        assert lock.pins.get(_normalise(match["name"])) == match["version"], f"{requirement}: lock says " \
            f"{lock.pins.get(_normalise(match['name']))}; run python docker/lock.py"
    missing = closure(requirements) - set(lock.pins)
    assert not missing, f"the lock lacks dependencies {sorted(missing)}; run python docker/lock.py"
    assert "setuptools" in lock.pins, "the build backend, for --no-build-isolation"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for hashes in lock.hashes.values() for h in hashes)
    assert all(lock.hashes.values()), [name for name, hashes in lock.hashes.items() if not hashes]


def test_locks_are_what_docker_lock_resolves_today(tmp_path: Path) -> None:
    """A pin changed without regenerating the lock fails here (needs the package index, as make does)."""
    spec = importlib.util.spec_from_file_location("docker_lock", REPO_ROOT / "docker" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    for image in module.IMAGES:
        assert module.render(image, module.resolve(image)) == image.path.read_text(), (
            f"{image.path.name} is stale: run python docker/lock.py {image.name}")


def test_gateway_image_installs_the_gateway_extra_and_no_inference_runtime() -> None:
    installed = image_distributions(GATEWAY)
    carried = installed & NOT_IN_GATEWAY_IMAGE
    assert not carried, f"the gateway image would carry {sorted(carried)}"
    assert {"fastapi", "uvicorn", "sqlalchemy", "alembic", "tritonclient", "numpy"} <= installed
    assert image_lock(GATEWAY).extras == ("gateway",)


def test_triton_image_installs_the_serving_and_build_extras_on_the_images_own_stub() -> None:
    assert image_lock(TRITON).extras == ("serving", "build")
    text = TRITON.read_text()
    assert "triton_python_backend_stub" not in text, "the NGC image's own stub matches its Triton and Python"
    assert "nvidia-pytriton" not in image_distributions(TRITON)


def test_gateway_image_matches_python_requirement_and_chart() -> None:
    packaging_specifiers = require_module("packaging.specifiers")
    (image,) = set(base_images(GATEWAY))
    python_version = re.match(r"python:(\d+\.\d+\.\d+)-", image).group(1)
    requires = packaging_specifiers.SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert python_version in requires, f"{image} does not satisfy requires-python {requires}"
    assert f"/python{python_version.rsplit('.', 1)[0]}/" in GATEWAY.read_text()
    assert image_lock(GATEWAY).python == python_version.rsplit(".", 1)[0], "the lock is for the image's Python"
    final = final_stage(GATEWAY)
    (cmd,) = [i.arguments for i in final if i.keyword == "CMD"]
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


def test_gateway_image_installs_every_runtime_dependency_the_gateway_imports() -> None:
    """Every third-party module that gateway/ (its migration scripts included) and contract/ import
    comes with the gateway image's install (pyproject.toml's `gateway` extra)."""
    paths = sources("gateway", "contract")
    assert any(path.parent.name == "versions" for path in paths), "the migration scripts are part of the gateway"
    assert "alembic" in image_distributions(GATEWAY), "gateway/migrate.py runs Alembic at start-up"
    missing = missing_distributions(third_party_imports(paths), image_distributions(GATEWAY))
    assert not missing, f"gateway imports modules the gateway image does not install: {missing}"


def test_triton_image_matches_chart_and_python_requirement() -> None:
    (image,) = base_images(TRITON)
    chart = (CHART_DIR / "Chart.yaml").read_text()
    assert f"imageserve/triton-base-image: {image}" in chart
    assert image == "nvcr.io/nvidia/tritonserver:26.10-py3"
    assert 'imageserve/triton-server-version: "2.74.0"' in chart
    values = load_values()["triton"]
    (user,) = [i.arguments for i in final_stage(TRITON) if i.keyword == "USER"][-1:]
    assert user == f"{values['runAsUser']}:{values['runAsGroup']}"
    text = TRITON.read_text()
    packaging_specifiers = require_module("packaging.specifiers")
    requires = packaging_specifiers.SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert "3.12" in requires, "NGC 26.10 is Ubuntu 24.04 with Python 3.12, the Python of its python-backend stub"
    assert "python3.12 -m venv" in text and "/lib/python3.12/site-packages" in text
    assert image_lock(TRITON).python == "3.12", "the lock is for the image's Python"
    env = image_env(final_stage(TRITON))
    assert env["PYTHONPATH"] == "/opt/imageserve/venv/lib/python3.12/site-packages", "the stub imports the venv's"
    assert {"numpy", "pillow", "onnxruntime", "openvino", "onnx", "tflite"} <= image_distributions(TRITON)
    exposed = next(i.arguments for i in final_stage(TRITON) if i.keyword == "EXPOSE").split()
    assert sorted(int(p) for p in exposed) == sorted(values["ports"].values())


# Modules that run in other environments, never in the Triton image: the Depth Anything hub
# export (.venv-hub) and MediaPipe's reference runtime (.venv-mediapipe).
NOT_IN_TRITON_IMAGE = frozenset({"converters/hub_depth_anything.py", "converters/mediapipe_reference.py",
                                 "converters/mediapipe_tensors.py"})
# Injected by Triton's python backend.
TRITON_PROVIDED = {"triton_python_backend_utils"}


def test_triton_image_has_every_dependency_the_model_code_imports() -> None:
    """converters (the build step), imaging and triton_models (python-backend models) import only
    the standard library, this repository and distributions the Triton image installs."""
    paths = sources("contract", "converters", "imaging", "triton_models", exclude=NOT_IN_TRITON_IMAGE)
    missing = missing_distributions(third_party_imports(paths, TRITON_PROVIDED), image_distributions(TRITON))
    assert not missing, f"imported but not installed in docker/triton.Dockerfile: {missing}"


@pytest.mark.parametrize(
    ("extra", "packages", "exclude"),
    [
        ("gateway", ("gateway", "contract"), frozenset()),
        ("serving", ("triton_models", "imaging", "contract"), frozenset()),
        ("build", ("converters", "contract"), NOT_IN_TRITON_IMAGE),
        ("bench", ("load_tests",), frozenset()),
    ],
)
def test_each_extra_brings_what_its_packages_import(extra: str, packages: tuple[str, ...], exclude: frozenset) -> None:
    """One extra per deployable: installing the project with it alone is enough to import the code."""
    paths = sources(*packages, exclude=exclude)
    assert paths
    missing = missing_distributions(third_party_imports(paths, TRITON_PROVIDED), closure(project_requirements([extra])))
    assert not missing, f"{packages} import modules pyproject.toml's {extra!r} extra does not bring: {missing}"


def test_the_gateway_extra_carries_no_inference_runtime() -> None:
    carried = closure(project_requirements(["gateway"])) & NOT_IN_GATEWAY_IMAGE
    assert not carried, f"pyproject.toml's gateway extra brings {sorted(carried)}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_build_context_lets_in_every_package_of_the_project(path: Path) -> None:
    ignore = Path(f"{path}.dockerignore")
    assert ignore.exists(), f"{ignore.name} keeps the build context small"
    lines = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "allow-list: exclude everything, then let sources in"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", *OWN_PACKAGES} <= allowed
    if path == TRITON:
        assert "model_repository" in allowed
    assert not allowed & {".venv", "build", ".git"}
