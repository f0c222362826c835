#!/usr/bin/env bash
# Download into .whl/ the wheels that the GPU device check carries (tests/gpu/wheels.txt), at the
# versions of this checkout's .venv, for CPython 3.12 on x86-64 Linux. Run from anywhere:
#   bash tests/gpu/fetch-wheels.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
venv_python=${VENV_PYTHON:-.venv/bin/python}
specs=()
while read -r dist how _; do
    [ "$how" = wheel ] || continue
    version=$("$venv_python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$dist")
    specs+=("$dist==$version")
done < <(grep -v '^[[:space:]]*#' tests/gpu/wheels.txt)
rm -rf .whl
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${specs[@]}"
ls -l .whl
du -sh .whl
