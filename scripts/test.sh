#!/usr/bin/env bash
# Install Workbench with its test extras on top of the CPU build of PyTorch, then lint and test.
# The CPU wheel goes first: a bare `torch` requirement with nothing installed pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[test]"
export QT_QPA_PLATFORM=offscreen
ruff check .
lint-imports
mypy  # the spec and the core: [tool.mypy] in pyproject.toml
python -m pytest -q
