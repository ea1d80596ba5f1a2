#!/usr/bin/env bash
# Create .venv and install the project with the CPU build of torch.
# GPU users: install a CUDA build of torch into .venv first (pytorch.org), then run this.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[pipeline,dev]"
