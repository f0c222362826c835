#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine: system packages for Qt offscreen
# and Xvfb screenshots, headless Chromium and poppler for report checks, PostgreSQL for the
# team store, then a virtual environment in .venv with the project and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  xvfb xauth libegl1 libgl1 libfontconfig1 libdbus-1-3 libxkbcommon0 fonts-dejavu-core
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0
  chromium poppler-utils postgresql
)
if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# The CPU build of torch first: an open range would pull a CUDA build of several GB.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
# strict editable mode: a tree of links to the sources under build/, which mypy can follow
# through the app/ -> wattbench mapping (run this again after adding a module)
.venv/bin/pip install -q -e '.[dev]' --config-settings editable_mode=strict
