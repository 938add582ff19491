"""The model-build init container's script, run against stand-ins for the converters CLI,
nvidia-smi and trtexec: cache keys, cache hits, failed and concurrent builds."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from .chart import CHART_DIR, HELM_DIR, tool

SCRIPT = CHART_DIR / "files" / "build-model-repository.sh"

# Stand-in for `python -m converters ...`: writes a two-model repository, or prints the
# trtexec commands; logs every call (and its depth model and HF_HOME); fails when CONVERTERS_FAIL is set.
FAKE_PYTHON = r"""#!/usr/bin/env bash
set -euo pipefail
echo "$*" >>"$CALL_LOG"
echo "${IMAGESERVE_DEPTH_MODEL-unset} ${HF_HOME-unset}" >>"$CALL_LOG.env"
[[ "$1 $2" == "-m converters" ]] || { echo "unexpected: $*" >&2; exit 2; }
[[ -z "${CONVERTERS_FAIL:-}" ]] || { echo "conversion failed" >&2; exit 3; }
case "$3" in
  build)
    [[ "$4 $6" == "--target --out" ]] || exit 2
    out="$7"
    for model in depth preprocess; do
      mkdir -p "$out/$model/1"
      echo "backend: \"$5\"" >"$out/$model/config.pbtxt"
    done
    echo onnx >"$out/depth/1/model.onnx"
    echo "$IMAGESERVE_CACHE" >"$out/download-cache"
    ;;
  trtexec)
    [[ "$4 $6" == "--repository --cache" ]] || exit 2
    echo "trtexec --onnx=$5/depth/1/model.onnx --saveEngine=$7/depth/model.plan --fp16"
    ;;
  *) exit 2 ;;
esac
"""

FAKE_TRTEXEC = r"""#!/usr/bin/env bash
set -euo pipefail
echo "trtexec $*" >>"$CALL_LOG"
for arg in "$@"; do
  case "$arg" in
    --onnx=*) [[ -f "${arg#--onnx=}" ]] || { echo "no ${arg#--onnx=} in $PWD" >&2; exit 4; } ;;
    --saveEngine=*) echo plan >"${arg#--saveEngine=}" ;;
  esac
done
"""

FAKE_NVIDIA_SMI = r"""#!/usr/bin/env bash
[[ "$*" == "--query-gpu=compute_cap --format=csv,noheader" ]] || exit 2
printf '8.9\n8.9\n'
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture()
def sandbox(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "trtexec", FAKE_TRTEXEC)
    _executable(bin_dir / "nvidia-smi", FAKE_NVIDIA_SMI)
    python = _executable(tmp_path / "fake-python", FAKE_PYTHON)
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    for version in ("10.3.0", "10.5.0", "9.9.9"):
        (lib_dir / f"libnvinfer.so.{version}").write_text("")
    (tmp_path / "cache").mkdir()
    (tmp_path / "source").mkdir()
    return {
        "root": tmp_path,
        "env": {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "PYTHON": str(python),
            "CALL_LOG": str(tmp_path / "calls.log"),
            "CACHE_ROOT": str(tmp_path / "cache"),
            "SOURCE_DIR": str(tmp_path / "source"),
            "TRT_LIB_DIRS": f"{tmp_path / 'missing'} {lib_dir}",
            "MODEL_REVISION": "0.1.0",
            "HOME": str(tmp_path),
        },
    }


def _run(sandbox: dict, target: str, pod: str, **env: str) -> subprocess.CompletedProcess[str]:
    destination = sandbox["root"] / pod
    destination.mkdir(exist_ok=True)
    full_env = {**sandbox["env"], "MODEL_TARGET": target, "MODEL_REPOSITORY": str(destination), **env}
    return subprocess.run(["bash", str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60)


def _calls(sandbox: dict) -> list[str]:
    log = Path(sandbox["env"]["CALL_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_script_in_configmap_is_shellcheck_clean() -> None:
    result = subprocess.run(
        [str(tool("shellcheck")), str(SCRIPT), str(HELM_DIR / "tools" / "install.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_gpu_build_is_cached_per_architecture_and_tensorrt_version(sandbox: dict) -> None:
    link = sandbox["root"] / "link-dir" / "tensorrt"
    link.parent.mkdir()
    first = _run(sandbox, "gpu", "pod-a", ORT_TRT_CACHE_LINK=str(link))
    assert first.returncode == 0, first.stderr
    final = sandbox["root"] / "cache" / "sm89-trt10.5.0" / "0.1.0"
    assert (final / ".complete").exists()
    assert (final / "engines" / "depth" / "model.plan").read_text() == "plan\n"
    assert "key=sm89-trt10.5.0" in (final / "BUILD_INFO").read_text()
    assert (sandbox["root"] / "pod-a" / "depth" / "1" / "model.onnx").exists()
    assert (sandbox["root"] / "pod-a" / "preprocess" / "config.pbtxt").read_text() == 'backend: "gpu"\n'
    # Downloads are cached beside the builds, so another GPU type does not fetch again.
    download_cache = (final / "model_repository" / "download-cache").read_text().strip()
    assert download_cache == str(sandbox["root"] / "cache" / "downloads")
    # onnxruntime's engine cache path of the configs leads into this key's cache.
    assert link.is_symlink() and link.resolve() == (final / "tensorrt").resolve()
    build, commands, trtexec = _calls(sandbox)
    # The converters write into a staging directory that is renamed into place afterwards.
    stage = f"{final.parent}/.build-0.1.0-"
    assert build.startswith(f"-m converters build --target gpu --out {stage}") and build.endswith("/model_repository")
    assert commands.startswith(f"-m converters trtexec --repository {stage}") and f"--cache {stage}" in commands
    assert trtexec.startswith("trtexec --onnx=") and trtexec.endswith("/engines/depth/model.plan --fp16")
    # A second pod on the same GPU type copies the cached build and converts nothing.
    second = _run(sandbox, "gpu", "pod-b")
    assert second.returncode == 0, second.stderr
    assert "cache hit" in second.stderr
    assert len(_calls(sandbox)) == 3
    assert (sandbox["root"] / "pod-b" / "depth" / "1" / "model.onnx").exists()
    # Another GPU architecture or TensorRT version builds again, under its own key.
    third = _run(sandbox, "gpu", "pod-c", GPU_ARCH="sm90", TRT_VERSION="10.5.0.18")
    assert third.returncode == 0, third.stderr
    assert (sandbox["root"] / "cache" / "sm90-trt10.5.0.18" / "0.1.0" / ".complete").exists()
    assert len(_calls(sandbox)) == 6
    leftovers = [p.name for p in (sandbox["root"] / "cache").glob("*/.build-*")]
    assert not leftovers


def _depth_models(sandbox: dict) -> list[str]:
    """IMAGESERVE_DEPTH_MODEL and HF_HOME as each converters call saw them."""
    log = Path(sandbox["env"]["CALL_LOG"] + ".env")
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("target, key", [("cpu", "cpu"), ("gpu", "sm89-trt10.5.0")])
def test_depth_model_reaches_the_converters_and_has_a_cache_entry_of_its_own(sandbox: dict, target: str,
                                                                            key: str) -> None:
    hf_home = str(sandbox["root"] / "cache" / "huggingface")
    default = _run(sandbox, target, "pod-a")
    assert default.returncode == 0, default.stderr
    before = _depth_models(sandbox)
    assert before and set(before) == {f"fastdepth {hf_home}"}  # unset means the default, said explicitly
    opted_in = _run(sandbox, target, "pod-b", IMAGESERVE_DEPTH_MODEL="depth_anything")
    assert opted_in.returncode == 0, opted_in.stderr
    assert "cache hit" not in opted_in.stderr, "a FastDepth build must not be served for depth_anything"
    final = sandbox["root"] / "cache" / f"{key}-depth_anything" / "0.1.0"
    assert (final / ".complete").exists()
    assert "depth_model=depth_anything" in (final / "BUILD_INFO").read_text()
    assert "depth_model=fastdepth" in (sandbox["root"] / "cache" / key / "0.1.0" / "BUILD_INFO").read_text()
    # Every converters call of the opted-in build (build, and trtexec on GPU) got the choice.
    calls = _depth_models(sandbox)[len(before):]
    assert len(calls) == len(before) and set(calls) == {f"depth_anything {hf_home}"}
    assert (sandbox["root"] / "pod-b" / "depth" / "1" / "model.onnx").exists()
    again = _run(sandbox, target, "pod-c", IMAGESERVE_DEPTH_MODEL="depth_anything")
    assert "cache hit" in again.stderr and str(final) in again.stderr


def test_gpu_build_without_trtexec_engines(sandbox: dict) -> None:
    result = _run(sandbox, "gpu", "pod-a", BUILD_TRT_ENGINES="false")
    assert result.returncode == 0, result.stderr
    assert [call.split()[2] for call in _calls(sandbox)] == ["build"]
    assert not (sandbox["root"] / "cache" / "sm89-trt10.5.0" / "0.1.0" / "engines").exists()


def test_cpu_build_runs_no_trtexec_and_needs_no_gpu(sandbox: dict) -> None:
    env = {"PATH": "/usr/bin:/bin"}  # neither nvidia-smi nor trtexec
    result = _run(sandbox, "cpu", "pod-a", **env)
    assert result.returncode == 0, result.stderr
    assert (sandbox["root"] / "cache" / "cpu" / "0.1.0" / ".complete").exists()
    assert [call.split()[2] for call in _calls(sandbox)] == ["build"]
    assert (sandbox["root"] / "pod-a" / "depth" / "config.pbtxt").read_text() == 'backend: "cpu"\n'


def test_failed_build_leaves_no_cache_entry(sandbox: dict) -> None:
    result = _run(sandbox, "gpu", "pod-a", CONVERTERS_FAIL="1")
    assert result.returncode != 0
    assert "conversion failed" in result.stderr
    key_dir = sandbox["root"] / "cache" / "sm89-trt10.5.0"
    assert not (key_dir / "0.1.0").exists()
    assert not list(key_dir.glob(".build-*")), "staging directory left behind"
    assert not list((sandbox["root"] / "pod-a").iterdir())


def test_incomplete_cache_entry_is_moved_aside_and_rebuilt(sandbox: dict) -> None:
    final = sandbox["root"] / "cache" / "cpu" / "0.1.0"
    (final / "model_repository").mkdir(parents=True)
    result = _run(sandbox, "cpu", "pod-a")
    assert result.returncode == 0, result.stderr
    assert (final / ".complete").exists()
    assert len(list(final.parent.glob(".stale-0.1.0-*"))) == 1


def test_pod_that_loses_the_race_uses_the_winners_build(sandbox: dict) -> None:
    # The winner renames its complete build into place while the loser is still converting.
    final = sandbox["root"] / "cache" / "cpu" / "0.1.0"
    slow_python = sandbox["root"] / "slow-python"
    _executable(
        slow_python,
        f"""#!/usr/bin/env bash
set -euo pipefail
"{sandbox['env']['PYTHON']}" "$@"
mkdir -p "{final}/model_repository/winner"
echo 'name: "winner"' >"{final}/model_repository/winner/config.pbtxt"
(cd "{final}" && sha256sum model_repository/winner/config.pbtxt >MANIFEST.sha256)
touch "{final}/.complete"
""",
    )
    result = _run(sandbox, "cpu", "pod-a", PYTHON=str(slow_python))
    assert result.returncode == 0, result.stderr
    assert "another pod cached" in result.stderr
    assert [p.name for p in (sandbox["root"] / "pod-a").iterdir()] == ["winner"]
    assert not list(final.parent.glob(".build-*"))


@pytest.mark.parametrize("tamper", ["change", "add", "remove"])
def test_a_cache_entry_that_no_longer_matches_its_manifest_is_rebuilt(sandbox: dict, tamper: str) -> None:
    assert _run(sandbox, "cpu", "pod-a").returncode == 0
    repository = sandbox["root"] / "cache" / "cpu" / "0.1.0" / "model_repository"
    if tamper == "change":
        (repository / "depth" / "1" / "model.onnx").write_text("planted")
    elif tamper == "add":
        (repository / "depth" / "1" / "model.py").write_text("import os; os.system('planted')")
    else:
        (repository / "depth" / "1" / "model.onnx").unlink()
    result = _run(sandbox, "cpu", "pod-b")
    assert result.returncode == 0, result.stderr
    assert "does not match its manifest" in result.stderr
    assert [call.split()[2] for call in _calls(sandbox)] == ["build", "build"]
    served = sandbox["root"] / "pod-b" / "depth" / "1"
    assert (served / "model.onnx").read_text() == "onnx\n" and not (served / "model.py").exists()
    assert "manifest verified" in _run(sandbox, "cpu", "pod-c").stderr  # the rebuilt entry is a hit again


def test_stale_files_in_the_model_repository_are_replaced(sandbox: dict) -> None:
    pod = sandbox["root"] / "pod-a"
    pod.mkdir()
    (pod / "old_model").mkdir()
    result = _run(sandbox, "cpu", "pod-a")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in pod.iterdir()) == ["depth", "download-cache", "preprocess"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODEL_TARGET": "tpu"}, "MODEL_TARGET must be cpu or gpu"),
        ({"MODEL_REVISION": ""}, "MODEL_REVISION is empty"),
        ({"MODEL_REVISION": "../x"}, "not usable in a cache path"),
        ({"GPU_ARCH": "sm89/../x"}, "not usable in a cache path"),
        ({"TRT_LIB_DIRS": "/nonexistent"}, "TensorRT version unknown"),
        ({"PATH": "/usr/bin:/bin"}, "nvidia-smi not found"),
        ({"BUILD_TRT_ENGINES": "yes"}, "BUILD_TRT_ENGINES must be true or false"),
        ({"IMAGESERVE_DEPTH_MODEL": "../x"}, "not usable in a cache path"),
    ],
)
def test_bad_environment_fails_with_a_clear_message(sandbox: dict, env: dict, message: str) -> None:
    target = env.pop("MODEL_TARGET", "gpu")
    result = _run(sandbox, target, "pod-a", **env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
