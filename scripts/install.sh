#!/bin/sh
# Install dlhw's dependencies into one Python environment: torch first, then dlhw itself,
# both constrained by constraints.txt. The Makefile (`make install`) and the Dockerfile both run
# this script, so the dependency list lives in pyproject.toml + constraints.txt and nowhere else.
#
#   scripts/install.sh PYTHON EXTRAS [--editable]
#   scripts/install.sh .venv/bin/python test --editable     # what `make install` runs
#   scripts/install.sh /opt/venv/bin/python gpu              # what the Dockerfile runs
set -eu
python="$1"
extras="$2"
mode="${3:-}"
cd "$(dirname "$0")/.."
"$python" -m pip install -q -c constraints.txt torch torchvision
if [ "$mode" = "--editable" ]; then
    "$python" -m pip install -q -c constraints.txt -e ".[$extras]"
else
    "$python" -m pip install -q -c constraints.txt ".[$extras]"
fi
