"""Print the exact requirement pyproject.toml pins for each distribution named, one a line.

docker/triton.Dockerfile installs the nvidia-pytriton wheel for its python-backend stub alone,
without the wheel's dependencies, so pip cannot take it from one of the project's extras; this
reads the pin from pyproject.toml, so that no version is written in the Dockerfile a second time.
Standard library only (the image's python3.11 runs it before any package is installed).

    python3.11 docker/pinned.py nvidia-pytriton      # -> nvidia-pytriton==0.7.0
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PIN = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(?P<version>[A-Za-z0-9_.+!-]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(pyproject: dict) -> dict[str, set[str]]:
    """Every exact pin of the base dependencies and the extras: name -> the requirements naming it."""
    project = pyproject["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    found: dict[str, set[str]] = {}
    for requirement in requirements:
        match = PIN.fullmatch(requirement)
        if match:
            found.setdefault(normalise(match["name"]), set()).add(requirement)
    return found


def pinned(name: str, pyproject: dict) -> str:
    requirements = pins(pyproject).get(normalise(name), set())
    if len(requirements) != 1:
        raise SystemExit(
            f"docker/pinned.py: pyproject.toml pins {name} {len(requirements)} ways: {sorted(requirements)}"
        )
    (requirement,) = requirements
    return requirement


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit("usage: python3.11 docker/pinned.py NAME...")
    pyproject = tomllib.loads(PYPROJECT.read_text())
    for name in argv:
        print(pinned(name, pyproject))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
