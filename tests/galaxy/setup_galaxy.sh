#!/usr/bin/env bash
# Create (once) the separate virtual environment that holds a real Galaxy server from PyPI.
#
# Galaxy is kept out of the project's main .venv: it pins its own versions of many libraries
# (and planemo, which lives in the main .venv, must not share them). 26.1.1 is pinned because
# 26.1.2 requires a certifi release that the package index here does not carry.
#
# Usage: bash tests/galaxy/setup_galaxy.sh [VENV_DIR]     (default: <repo>/.venv-galaxy)
# Idempotent: a second run only checks the installed version and returns in about a second.
set -euo pipefail

GALAXY_VERSION="26.1.1"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-${REPO_ROOT}/.venv-galaxy}"
PYTHON="${PYTHON:-python3}"
STAMP="${VENV}/.galaxy-${GALAXY_VERSION}.ok"

if [[ -f "${STAMP}" && -x "${VENV}/bin/galaxy-web" ]]; then
    echo "Galaxy ${GALAXY_VERSION} already installed in ${VENV}"
    exit 0
fi

echo "Installing Galaxy ${GALAXY_VERSION} into ${VENV} (a few minutes, once)"
if [[ ! -x "${VENV}/bin/python" ]]; then
    "${PYTHON}" -m venv "${VENV}"
fi
"${VENV}/bin/python" -m pip install --quiet --upgrade pip
"${VENV}/bin/python" -m pip install --quiet "galaxy==${GALAXY_VERSION}"

installed="$("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("galaxy"))')"
if [[ "${installed}" != "${GALAXY_VERSION}" ]]; then
    echo "error: expected galaxy ${GALAXY_VERSION} in ${VENV}, found ${installed}" >&2
    exit 1
fi
if [[ ! -x "${VENV}/bin/galaxy-web" ]]; then
    echo "error: ${VENV}/bin/galaxy-web is missing after installing galaxy ${GALAXY_VERSION}" >&2
    exit 1
fi
touch "${STAMP}"
echo "Galaxy ${GALAXY_VERSION} installed in ${VENV}"
