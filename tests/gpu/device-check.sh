#!/usr/bin/env bash
# The GPU device check (BENCHMARKS.md, "GPU check"): bash tests/gpu/device-check.sh OUT_DIR
# Runs on a bare NVIDIA GPU machine from the repository root; the wheels of the project's other
# dependencies are in .whl/ (bash tests/gpu/fetch-wheels.sh). Without an NVIDIA GPU it stops at
# once (exit 3). Everything else is in device_check.py beside this file.
set -u
if [ $# -lt 1 ]; then
    echo "usage: bash tests/gpu/device-check.sh OUT_DIR [--budget-s S]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python3}" "$here/device_check.py" "$@"
