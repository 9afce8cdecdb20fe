#!/usr/bin/env bash
# The lock files: every distribution the project installs, pinned to one version with its hashes.
#
#   requirements.lock       the worker's runtime dependencies and the build backend (the Dockerfile installs these)
#   requirements-dev.lock   the same versions, plus the test and lint tools (`make test`, `make demo` install these)
#
# Both are compiled from pyproject.toml (its ranges and its build-system requirements) by uv, for every platform
# (--universal), with the hashes of every published file of each pinned version. The dev lock is constrained by the
# runtime lock, so a distribution has one version in both. `make lock` runs this after pyproject.toml changed;
# `make lock ARGS=--upgrade` moves every pin to the newest version the ranges allow.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python=python3
tools="${RK_TOOLS_DIR:-$HOME/.cache/rueckkanal/tools}/uv-$UV_VERSION"
if [[ ! -x "$tools/bin/uv" ]]; then
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
uv="$tools/bin/uv"
build_in="$(mktemp -t rk-build-XXXXXX.in)"
trap 'rm -f "$build_in"' EXIT
"$python" - "$build_in" <<'PY'
import sys, tomllib
with open("pyproject.toml", "rb") as f:
    requires = tomllib.load(f)["build-system"]["requires"]
with open(sys.argv[1], "w") as out:
    out.write("\n".join(requires) + "\n")
PY
common=(--generate-hashes --universal --python-version 3.11 --quiet --no-header --annotation-style line "$@")
"$uv" pip compile pyproject.toml "$build_in" "${common[@]}" -o requirements.lock
"$uv" pip compile pyproject.toml "$build_in" --extra dev -c requirements.lock "${common[@]}" -o requirements-dev.lock
# The temporary file's name must not end up in the files as a source of a requirement.
sed -i "s|$build_in|pyproject.toml (build-system)|g" requirements.lock requirements-dev.lock
echo "lock.sh: $(grep -c '==' requirements.lock) runtime and $(grep -c '==' requirements-dev.lock) dev pins written"
