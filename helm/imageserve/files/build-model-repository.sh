#!/usr/bin/env bash
# Produces Triton's model repository for this node and copies it to $MODEL_REPOSITORY.
#
# The build runs once per cache key and revision:
#   $CACHE_ROOT/<key>/<revision>/model_repository   `python -m converters build` (fetch the source
#                                                    models, convert to ONNX, write configs)
#   $CACHE_ROOT/<key>/<revision>/engines            GPU: TensorRT engines from the trtexec
#                                                    commands `python -m converters trtexec` prints
#   $CACHE_ROOT/<key>/<revision>/tensorrt           GPU: onnxruntime's TensorRT engine cache,
#                                                    filled by Triton at first load, linked at
#                                                    $ORT_TRT_CACHE_LINK (the configs' path)
# where <key> is "<sm>-trt<TensorRT version>" on GPU (e.g. sm89-trt10.5.0.18) and "cpu" on CPU,
# followed by "-<depth model>" when the depth model is not the default (e.g. cpu-depth_anything).
# A build is staged in a temporary directory and renamed into place, so pods building at the
# same time on a shared volume never see a half-written repository; the first to finish wins.
#
# Environment:
#   MODEL_TARGET       cpu | gpu (required)
#   MODEL_REVISION     cache revision, e.g. the image tag (required)
#   CACHE_ROOT         cache directory (required)
#   MODEL_REPOSITORY   directory Triton loads (required)
#   BUILD_TRT_ENGINES  GPU: run the trtexec commands (default true)
#   ORT_TRT_CACHE_LINK GPU: symbolic link to create to the engine cache (e.g. /cache/tensorrt)
#   GPU_ARCH           override of the detected GPU architecture, e.g. sm90
#   TRT_VERSION        TensorRT version (NGC images set it); detected from libnvinfer otherwise
#   TRT_LIB_DIRS       where to look for libnvinfer.so.X.Y.Z (space-separated)
#   SOURCE_DIR         directory the converters run from (default /opt/imageserve)
#   PYTHON             interpreter with the converters package (default python)
#   IMAGESERVE_CACHE   the converters' download cache (default $CACHE_ROOT/downloads)
#   IMAGESERVE_DEPTH_MODEL  source of the depth model: fastdepth (default) or depth_anything (Depth
#                      Anything V2 Small from the Hugging Face hub: needs huggingface.co and the hub
#                      packages, which the converters check before building); the converters validate it
#   HF_HOME            the Hugging Face hub cache (default $CACHE_ROOT/huggingface)
set -euo pipefail
shopt -s inherit_errexit

log() { printf '%s model-build: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

target="${MODEL_TARGET:-}"
revision="${MODEL_REVISION:-}"
cache_root="${CACHE_ROOT:-}"
destination="${MODEL_REPOSITORY:-}"
source_dir="${SOURCE_DIR:-/opt/imageserve}"
python="${PYTHON:-python}"
build_engines="${BUILD_TRT_ENGINES:-true}"
depth_model="${IMAGESERVE_DEPTH_MODEL:-fastdepth}"
ort_cache_link="${ORT_TRT_CACHE_LINK:-}"
trt_lib_dirs="${TRT_LIB_DIRS:-/usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/tensorrt/lib}"

[[ "$target" == "cpu" || "$target" == "gpu" ]] || die "MODEL_TARGET must be cpu or gpu, got '$target'"
[[ -n "$revision" ]] || die "MODEL_REVISION is empty"
[[ -n "$cache_root" && -d "$cache_root" ]] || die "CACHE_ROOT '$cache_root' is not a directory"
[[ -n "$destination" && -d "$destination" ]] || die "MODEL_REPOSITORY '$destination' is not a directory"
[[ "$build_engines" == "true" || "$build_engines" == "false" ]] \
  || die "BUILD_TRT_ENGINES must be true or false, got '$build_engines'"
export IMAGESERVE_CACHE="${IMAGESERVE_CACHE:-$cache_root/downloads}"
export HF_HOME="${HF_HOME:-$cache_root/huggingface}"
export IMAGESERVE_DEPTH_MODEL="$depth_model"

# Only characters that are safe in one path component. (A check, not a filter: `die` in a
# command substitution would only leave the subshell.)
require_safe_component() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "'$1' is not usable in a cache path"
}

gpu_arch() {
  if [[ -n "${GPU_ARCH:-}" ]]; then
    printf '%s' "$GPU_ARCH"
    return
  fi
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: is a GPU assigned to this container?"
  local capability
  capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | awk 'NR == 1 { gsub(/[[:space:]]/, ""); print }')"
  [[ "$capability" =~ ^[0-9]+\.[0-9]+$ ]] || die "unexpected compute capability '$capability'"
  printf 'sm%s' "${capability/./}"
}

trt_version() {
  if [[ -n "${TRT_VERSION:-}" ]]; then
    printf '%s' "$TRT_VERSION"
    return
  fi
  local dir lib version best=""
  for dir in $trt_lib_dirs; do
    for lib in "$dir"/libnvinfer.so.*.*.*; do
      [[ -e "$lib" ]] || continue
      version="${lib##*/libnvinfer.so.}"
      if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$version" | sort -V | tail -n1)" == "$version" ]]; then
        best="$version"
      fi
    done
  done
  [[ -n "$best" ]] || die "TensorRT version unknown: set TRT_VERSION or TRT_LIB_DIRS"
  printf '%s' "$best"
}

if [[ "$target" == "gpu" ]]; then
  arch="$(gpu_arch)"
  trt="$(trt_version)"
  require_safe_component "$arch"
  require_safe_component "$trt"
  key="$arch-trt$trt"
else
  key="cpu"
fi
require_safe_component "$depth_model"
if [[ "$depth_model" != "fastdepth" ]]; then
  key="$key-$depth_model"
fi
require_safe_component "$revision"
final="$cache_root/$key/$revision"

build() {
  local stage="$1"
  local repository="$stage/model_repository"
  log "building the $target model repository (depth model $depth_model) into $final"
  (cd "$source_dir" && "$python" -m converters build --target "$target" --out "$repository")
  if [[ "$target" == "gpu" && "$build_engines" == "true" ]]; then
    local model
    for model in "$repository"/*/; do
      mkdir -p "$stage/engines/$(basename "$model")"
    done
    (cd "$source_dir" && "$python" -m converters trtexec --repository "$repository" --cache "$stage/engines") \
      >"$stage/trtexec-commands.sh"
    log "running $(grep -cvE '^[[:space:]]*(#|$)' "$stage/trtexec-commands.sh" || true) trtexec command(s)"
    bash -euo pipefail "$stage/trtexec-commands.sh"
  fi
  mkdir -p "$stage/tensorrt"
  {
    printf 'key=%s\nrevision=%s\ntarget=%s\ndepth_model=%s\n' "$key" "$revision" "$target" "$depth_model"
    printf 'built_at=%s\nbuilt_by=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${HOSTNAME:-unknown}"
  } >"$stage/BUILD_INFO"
  # Every file of the repository and its sha256: a cache hit is used only if they all still match.
  (cd "$stage" && find model_repository -type f -print0 | sort -z | xargs -0 sha256sum) >"$stage/MANIFEST.sha256"
  touch "$stage/.complete"
}

# True when the cached repository is exactly what its build wrote (the cache volume outlives pods, and
# anything that can write to it could otherwise plant a model that Triton then runs).
verified() {
  [[ -f "$1/MANIFEST.sha256" ]] || return 1
  (cd "$1" && sha256sum --check --quiet --strict MANIFEST.sha256 >/dev/null 2>&1) || return 1
  [[ "$(cd "$1" && find model_repository -type f | wc -l)" -eq "$(wc -l <"$1/MANIFEST.sha256")" ]]
}

if [[ -f "$final/.complete" ]] && verified "$final"; then
  log "cache hit: $final (manifest verified)"
else
  if [[ -f "$final/.complete" ]]; then
    log "cached $final does not match its manifest; building it again"
    rm -f "$final/.complete"
  fi
  mkdir -p "$cache_root/$key"
  if [[ -e "$final" ]]; then
    # Left by something other than this script (it only renames complete builds into place).
    stale="$cache_root/$key/.stale-$revision-$(date -u +%Y%m%d%H%M%S)-$$"
    log "moving incomplete $final aside to $stale"
    mv -T "$final" "$stale"
  fi
  stage="$(mktemp -d "$cache_root/$key/.build-$revision-XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  build "$stage"
  if mv -T "$stage" "$final" 2>/dev/null; then
    log "cached: $final"
  elif [[ -f "$final/.complete" ]] && verified "$final"; then
    log "another pod cached $final first; using it"
  else
    die "could not move $stage to $final"
  fi
fi

[[ -d "$final/model_repository" ]] || die "$final has no model_repository"
find "$destination" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
cp -R "$final/model_repository/." "$destination/"
if [[ -n "$ort_cache_link" ]]; then
  mkdir -p "$final/tensorrt"
  ln -sfn "$final/tensorrt" "$ort_cache_link"
fi
log "model repository ready in $destination ($(find "$destination" -mindepth 1 -maxdepth 1 -type d | wc -l) models, key $key, revision $revision)"
