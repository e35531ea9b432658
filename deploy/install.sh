#!/usr/bin/env bash
# Installs activestream into a fresh virtual environment: builds the project's wheel, then installs it and
# its dependencies. The image's builder stage runs exactly this (deploy/Dockerfile), and so does the test
# that checks the image's install steps without a Docker engine (tests/deploy/test_deploy.py).
#
# Usage: deploy/install.sh VENV [SOURCE_DIR] [EXTRAS]
#   VENV        where to create the virtual environment (must not exist yet)
#   SOURCE_DIR  the project root holding pyproject.toml (default: the current directory)
#   EXTRAS      optional extras to install, comma-separated, e.g. "demo" (default: none)
# Pip options come from the environment (PIP_NO_CACHE_DIR, PIP_INDEX_URL, ...).
set -euo pipefail

venv=${1:?usage: install.sh VENV [SOURCE_DIR] [EXTRAS]}
source_dir=${2:-.}
extras=${3:-}
python=${PYTHON:-python3}

if [[ -e $venv ]]; then
    echo "install.sh: $venv exists already; refusing to install over it" >&2
    exit 1
fi

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT

"$python" -m venv "$venv"
# The project's wheel only (--no-deps); the install below resolves the dependencies from the index.
"$venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$source_dir"
wheel=$(find "$wheels" -name 'activestream-*.whl' -print -quit)
if [[ -z $wheel ]]; then
    echo "install.sh: no activestream wheel was built" >&2
    exit 1
fi
"$venv/bin/python" -m pip install --quiet "${wheel}${extras:+[$extras]}"
# Smoke test: the console script starts.
"$venv/bin/activestream" --help >/dev/null
