#!/usr/bin/env bash
# Create (or complete) a virtual environment with lnc's pinned dependencies and lnc itself.
#   bash scripts/install.sh [VENV]        (default: .venv at the repository root)
# The torch trio goes first and stays pinned in every pip call, so nothing later can move torch.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
if [ ! -f "$venv/.lnc-deps" ] || ! cmp -s "$venv/.lnc-deps" <(cat requirements.txt requirements-dev.txt); then
    [ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q torch==2.9.1 torchvision==0.24.1
    "$venv/bin/pip" install -q torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1
    "$venv/bin/pip" install -q torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1 -r requirements.txt -r requirements-dev.txt
    cat requirements.txt requirements-dev.txt > "$venv/.lnc-deps"
fi
# Builds the compiled range coder (entropy/range_coder.cpp) from source.
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e .
