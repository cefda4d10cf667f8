"""One ONNX Runtime per install set.

``onnxruntime`` and ``onnxruntime-gpu`` both install the module ``onnxruntime``; a set that pulls
both leaves whichever pip wrote last. The install sets are read from where they are used -- the
Makefile's ``make install`` line, the Dockerfile's ``EXTRAS`` (the image) and the smoke build's
``EXTRAS`` -- and each is resolved to the distributions it installs by following ``Requires-Dist``:
from this environment's metadata for what is installed here, and from ``PUBLISHED_REQUIRES`` for
the GPU-only packages a CPU environment lacks. Offline, no pip resolution.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parents[1]
ONNX_RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}

# Requires-Dist of the GPU-only packages at the versions constraints.txt pins, as published on
# PyPI (tensorrt-cu13-libs is a stub sdist whose PKG-INFO declares none).
PUBLISHED_REQUIRES: dict[str, tuple[str, list[str]]] = {
    "onnxruntime-gpu": ("1.31.1", [
        "flatbuffers", "numpy>=1.21.6", "packaging", "protobuf>=4.25.8",
        'sympy; extra == "symbolic"', 'ml_dtypes; extra == "quantization"',
        'nvidia-cuda-nvrtc~=13.0; extra == "cuda"', 'nvidia-cuda-runtime~=13.0; extra == "cuda"',
        'nvidia-cufft~=12.0; extra == "cuda"', 'nvidia-curand~=10.0; extra == "cuda"',
        'nvidia-cudnn-cu13~=9.0; extra == "cudnn"',
    ]),
    "tensorrt-cu13": ("10.16.1.11", [
        "tensorrt_cu13_libs==10.16.1.11", "tensorrt_cu13_bindings==10.16.1.11",
        'numpy; extra == "numpy"',
    ]),
    "tensorrt-cu13-libs": ("10.16.1.11", []),
    "tensorrt-cu13-bindings": ("10.16.1.11", ['numpy; extra == "numpy"']),
    "bitsandbytes": ("0.50.2", ["torch<3,>=2.4", "numpy>=1.17", "packaging>=20.9"]),
}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def extras_of(path: str, pattern: str) -> set[str]:
    """The comma-separated extras that ``pattern``'s one group finds in ROOT/path."""
    found = re.findall(pattern, (ROOT / path).read_text(), flags=re.MULTILINE)
    assert len(found) == 1, f"{path}: expected one install line matching {pattern!r}, found {found}"
    return set(found[0].split(","))


def makefile_extras() -> set[str]:
    return extras_of("Makefile", r"scripts/install\.sh \$\(BIN\)/python (\S+) --editable$")


def dockerfile_extras() -> set[str]:
    text = (ROOT / "Dockerfile").read_text()
    assert 'scripts/install.sh /opt/venv/bin/python "${EXTRAS}"' in text
    return extras_of("Dockerfile", r"^ARG EXTRAS=(\S+)$")


def smoke_extras() -> set[str]:
    return extras_of("scripts/docker_smoke.sh", r"^CPU_EXTRAS=(\S+)$")


def gpu_smoke_extras() -> set[str]:
    """The set `make docker-smoke-gpu` builds (the script leaves out an extra pyproject.toml lacks)."""
    defined = set(pyproject()["project"]["optional-dependencies"])
    return extras_of("scripts/docker_smoke.sh", r"^GPU_EXTRAS=(\S+)$") & defined


def requires_of(requirement: Requirement, pins: dict[str, str]) -> list[str]:
    """Requires-Dist of the distribution ``requirement`` names: installed metadata, else the
    published record -- of the version that constraints.txt or the requirement itself pins."""
    name = canonicalize_name(requirement.name)
    try:
        return metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        pass
    if name not in PUBLISHED_REQUIRES:
        pytest.fail(f"{name} is in an install set but neither installed here (run `make install`) "
                    "nor recorded in PUBLISHED_REQUIRES")
    version, requires = PUBLISHED_REQUIRES[name]
    pinned = {pins.get(name)} | {s.version for s in requirement.specifier if s.operator == "=="}
    assert version in pinned, f"PUBLISHED_REQUIRES records {name} {version}; the install pins {pinned}"
    return requires


def active(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def install_set(extras: set[str]) -> set[str]:
    """Every distribution ``scripts/install.sh PYTHON EXTRAS`` installs: torch and torchvision,
    then dlhw[EXTRAS], and everything they require, transitively."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    project = pyproject()["project"]
    todo = [(Requirement(r), set()) for r in ["torch", "torchvision", *project["dependencies"]]]
    for extra in extras:
        todo += [(Requirement(r), set()) for r in project["optional-dependencies"][extra]]
    seen: dict[str, set[str]] = {}
    while todo:
        requirement, parent_extras = todo.pop()
        if not active(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        wanted = set(requirement.extras)
        if name in seen and wanted <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | wanted
        todo += [(Requirement(r), seen[name]) for r in requires_of(requirement, pins)]
    return set(seen)


def test_base_dependencies_hold_no_onnx_runtime():
    assert not install_set(set()) & ONNX_RUNTIMES


@pytest.mark.parametrize("where, extras", [
    ("Makefile (make install)", makefile_extras),
    ("Dockerfile (the image)", dockerfile_extras),
    ("scripts/docker_smoke.sh (the smoke image)", smoke_extras),
    ("scripts/docker_smoke.sh --gpu (the GPU smoke image)", gpu_smoke_extras),
])
def test_every_install_set_holds_exactly_one_onnx_runtime(where, extras):
    found = install_set(extras()) & ONNX_RUNTIMES
    assert len(found) == 1, f"{where} installs {sorted(found) or 'no ONNX Runtime'}"


def test_the_image_installs_onnxruntime_gpu_and_tensorrt_for_cuda_13_only():
    assert dockerfile_extras() == {"gpu", "tensorrt", "ray"}
    packages = install_set(dockerfile_extras())
    assert packages & ONNX_RUNTIMES == {"onnxruntime-gpu"}
    # torch 2.14.1's wheel is a CUDA 13 build: nothing in the image may be built for CUDA 12.
    assert {"tensorrt-cu13", "tensorrt-cu13-libs", "nvidia-cudnn-cu13"} <= packages
    assert not [p for p in packages if p.endswith("-cu12") or p == "tensorrt"]


def test_the_gpu_smoke_installs_onnxruntime_gpu_from_pypi_alone():
    # tensorrt-cu13-libs fetches its libraries from pypi.nvidia.com at install time: not in this set.
    assert gpu_smoke_extras() == {"gpu", "ray"}
    packages = install_set(gpu_smoke_extras())
    assert packages & ONNX_RUNTIMES == {"onnxruntime-gpu"}
    assert not [p for p in packages if p.startswith("tensorrt")]


def test_make_install_and_the_smoke_image_install_the_cpu_runtime():
    assert makefile_extras() == {"cpu", "test", "ray"} and smoke_extras() == {"cpu"}  # ray: the --engine ray tests
    assert install_set(makefile_extras()) & ONNX_RUNTIMES == {"onnxruntime"}


def test_this_environment_has_one_onnx_runtime():
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()} & ONNX_RUNTIMES
    assert installed == {"onnxruntime"}, installed
