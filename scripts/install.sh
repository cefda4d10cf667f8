#!/bin/sh
# Install dlhw's dependencies into one Python environment: torch first, then dlhw itself,
# both constrained by constraints.txt. The Makefile (`make install`) and the Dockerfile both run
# this script, so the dependency list lives in pyproject.toml + constraints.txt and nowhere else.
#
#   scripts/install.sh PYTHON EXTRAS [--editable]
#   scripts/install.sh .venv/bin/python cpu,test --editable   # what `make install` runs
#   scripts/install.sh /opt/venv/bin/python gpu,tensorrt,ray   # what the Dockerfile runs (EXTRAS)
#
# EXTRAS must name exactly one of `cpu` (onnxruntime) and `gpu` (onnxruntime-gpu): both packages
# install the module `onnxruntime`, so an environment with both has whichever came last. `tensorrt`
# (TensorRT 10 for onnxruntime-gpu's TensorRT provider) goes with `gpu`.
set -eu
python="$1"
extras="$2"
mode="${3:-}"
cd "$(dirname "$0")/.."
# pip first: older resolvers (Debian 12's venv brings pip 23.0) backtrack for many minutes over
# this dependency set; the pinned one resolves it in seconds.
"$python" -m pip install -q -c constraints.txt --upgrade pip
"$python" -m pip install -q -c constraints.txt torch torchvision
if [ "$mode" = "--editable" ]; then
    "$python" -m pip install -q -c constraints.txt -e ".[$extras]"
else
    "$python" -m pip install -q -c constraints.txt ".[$extras]"
fi
"$python" - <<'PY'
from importlib import metadata

found = []
for name in ("onnxruntime", "onnxruntime-gpu"):
    try:
        found.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
if len(found) > 1:
    raise SystemExit("two ONNX Runtimes installed (" + ", ".join(found) + "): both write the module "
                     "onnxruntime; uninstall both and reinstall with one of the extras cpu / gpu")
PY
