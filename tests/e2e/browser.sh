#!/usr/bin/env bash
# Installs the browser that tests/e2e/test_demo.py drives: Debian's chromium and chromium-driver
# (chromedriver), headless through selenium. Skips when both are already there; otherwise installs
# them with apt-get, noninteractive, as root (or through `sudo -n` when that works without a password).
# Usage: tests/e2e/browser.sh   (idempotent; `make test` calls it before the e2e tests)
set -euo pipefail

if chromium --version >/dev/null 2>&1 && chromedriver --version >/dev/null 2>&1; then
    echo "browser present: $(chromium --version); $(chromedriver --version | head -n 1)"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "tests/e2e/browser.sh: chromium and chromium-driver are missing and installing them needs root:" >&2
    echo "  apt-get install chromium chromium-driver   (as root), then run this again" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver
echo "browser installed: $(chromium --version); $(chromedriver --version | head -n 1)"
