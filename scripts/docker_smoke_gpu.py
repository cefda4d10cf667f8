"""The in-container checks of `make docker-smoke-gpu`, fed to the image's python on stdin:

    docker run -i --entrypoint python IMAGE - CHECK < scripts/docker_smoke_gpu.py

CHECK is one of: packages, ort, loader, session, torch, extras. The machine that runs them has no GPU and no
NVIDIA driver, so they check what can be checked without one: which packages are installed, that
the loader resolves the libraries ONNX Runtime's CUDA provider needs, that the provider library
loads, and what fails only for want of a device. Each exits non-zero when its check fails.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata

LOADER_CONF = "/etc/ld.so.conf.d/000-dlhw-venv.conf"
# The NVIDIA driver's library: `docker run --gpus all` mounts it from the host, so without a GPU it
# is the one library allowed to be missing.
DRIVER_LIBS = {"libcuda.so.1"}
# The CUDA 13 / cuDNN 9 libraries of the onnxruntime-gpu[cuda,cudnn] and torch wheels, and TensorRT 10's.
CUDA_SONAMES = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10", "libcufft.so.12",
                "libnvrtc.so.13", "libcudnn.so.9")
TENSORRT_SONAMES = ("libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10")
# What ORT/CUDA say when the libraries loaded but there is no GPU or no driver to run on.
NO_GPU_SIGNS = ("libcuda.so.1", "no CUDA-capable device", "cudaErrorNoDevice", "CUDA driver",
                "cudaErrorInsufficientDriver", "insufficient", "CUDA failure 100", "CUDA failure 35")


def fail(message: str) -> None:
    print(f"FAILED: {message}")
    raise SystemExit(1)


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def folder_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names
               if not os.path.islink(os.path.join(root, name)))


def check_packages() -> None:
    """What the build installed: the GPU-relevant distributions and the biggest folders."""
    names = sorted({d.metadata["Name"] for d in metadata.distributions()})
    wanted = ("torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "bitsandbytes", "ray", "triton",
              "tensorrt", "tensorrt-cu13", "onnx", "transformers", "dlhw")
    key = [n for n in names if n.lower().replace("_", "-") in wanted]
    nvidia = [n for n in names if n.lower().replace("_", "-").startswith("nvidia-")]
    print(f"{len(names)} distributions; among them:")
    for name in key:
        print(f"    {name} {metadata.version(name)}")
    print(f"    {len(nvidia)} nvidia-* wheels: " + ", ".join(f"{n} {metadata.version(n)}" for n in nvidia))
    site = sysconfig.get_paths()["purelib"]
    sizes = sorted(((folder_size(os.path.join(site, d)), d) for d in os.listdir(site)
                    if os.path.isdir(os.path.join(site, d))), reverse=True)
    total = sum(size for size, _ in sizes)
    print(f"{site}: {total / 1e9:.2f} GB; largest: "
          + ", ".join(f"{d} {size / 1e9:.2f} GB" for size, d in sizes[:8]))


def check_ort() -> None:
    """The ONNX Runtime installed is the GPU package, and it lists the CUDA provider."""
    import onnxruntime
    from onnxruntime.capi import build_and_package_info as info

    found = {name: installed(name) for name in ("onnxruntime", "onnxruntime-gpu")}
    print("ONNX Runtime distributions:", ", ".join(f"{n} {v}" for n, v in found.items() if v) or "none")
    build = {k: v for k, v in vars(info).items() if not k.startswith("__")}
    print(f"build_and_package_info: {build} (version {info.__version__})")
    providers = onnxruntime.get_available_providers()
    print("onnxruntime.get_available_providers():", providers)
    print("TensorrtExecutionProvider listed:", "TensorrtExecutionProvider" in providers,
          "(listed by the build; TensorRT itself is a separate install)")
    if found["onnxruntime"] or not found["onnxruntime-gpu"]:
        fail("expected onnxruntime-gpu alone")
    if info.package_name != "onnxruntime-gpu":
        fail(f"import onnxruntime loaded {info.package_name}")
    if "CUDAExecutionProvider" not in providers:
        fail("CUDAExecutionProvider is not listed")


def dynamic_paths(path: str) -> dict[str, str]:
    """DT_RPATH / DT_RUNPATH of an ELF64 little-endian shared library (no binutils in the image)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        found = {}
        for section in sections:
            if section[1] != 6:  # SHT_DYNAMIC
                continue
            offset, size, strtab = section[4], section[5], sections[section[6]][4]
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                if tag == 0:
                    break
                if tag in (15, 29):  # DT_RPATH, DT_RUNPATH
                    end = data.find(b"\0", strtab + value)
                    found["RPATH" if tag == 15 else "RUNPATH"] = data[strtab + value:end].decode()
        return found


def ldd_missing(path: str) -> tuple[list[str], list[str]]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    lines = [line.strip() for line in out.splitlines()]
    return [line.split()[0] for line in lines if "not found" in line], lines


def check_loader() -> None:
    """The folders the Dockerfile lists for the loader, and what ldd resolves for ORT's providers."""
    import onnxruntime

    print(f"{LOADER_CONF}:")
    with open(LOADER_CONF) as conf:
        folders = conf.read().split()
    for folder in folders:
        print(f"    {folder}")
    if not any(f.endswith("/lib") and "/nvidia/" in f for f in folders):
        fail("no site-packages/nvidia/*/lib folder listed")
    capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
    tensorrt = installed("tensorrt-cu13") is not None
    for provider in ("cuda", "tensorrt"):
        lib = os.path.join(capi, f"libonnxruntime_providers_{provider}.so")
        if not os.path.exists(lib):
            if provider == "cuda":
                fail(f"{lib} is missing")
            print(f"{lib}: not in this build")
            continue
        missing, lines = ldd_missing(lib)
        nvidia = [line for line in lines if "/site-packages/" in line]
        print(f"{os.path.basename(lib)}: {dynamic_paths(lib) or 'no RPATH/RUNPATH'}; "
              f"{len(lines)} libraries, {len(nvidia)} from the venv's wheels:")
        for line in nvidia:
            print(f"    {line}")
        print(f"    not found: {', '.join(missing) or 'none'}")
        if (provider == "cuda" or tensorrt) and set(missing) - DRIVER_LIBS:
            fail(f"the {provider} provider's libraries are not all on the loader path: {missing}")
        if provider == "tensorrt" and missing and not tensorrt:
            print("    (expected without TensorRT: the tensorrt extra puts libnvinfer.so.10 on this path)")
    # What the providers and torch load by soname at run time, in a process that has not imported
    # torch: found through the loader's cache alone.
    sonames = CUDA_SONAMES + (TENSORRT_SONAMES if tensorrt else ())
    print("dlopen by soname alone (no torch imported, no LD_LIBRARY_PATH):")
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
        except OSError as error:
            fail(f"{soname}: {error}")
        with open("/proc/self/maps") as maps:
            path = next((line.split()[-1] for line in maps if line.rstrip().endswith(soname)), "?")
        print(f"    {soname} => {path}")
    if not tensorrt:
        print(f"    {', '.join(TENSORRT_SONAMES)}: not tried (no TensorRT in this image)")


def check_session() -> None:
    """A session asked for CUDA: the provider library must load; only the missing GPU may stop it."""
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    # ORT logs to the process's stderr (fd 2): catch it to judge what stopped the CUDA provider.
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 2)
        try:
            session = onnxruntime.InferenceSession(
                model.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            outcome = f"session providers: {session.get_providers()}"
        except Exception as error:  # noqa: BLE001 - reported and judged below
            outcome = f"session error: {type(error).__name__}: {error}"
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
        log.seek(0)
        messages = log.read().strip()
    print("InferenceSession(providers=[CUDAExecutionProvider, CPUExecutionProvider]):")
    for line in messages.splitlines():
        print(f"    {line}")
    print(f"    {outcome}")
    text = f"{messages}\n{outcome}"
    unloadable = "cannot open shared object" in text
    missing = sorted({word.strip("'\":,") for word in text.split() if ".so." in word and word.startswith("lib")}
                     - DRIVER_LIBS) if unloadable else []
    if missing:
        fail(f"the CUDA provider could not load a library: {missing}")
    if "CUDAExecutionProvider" in outcome and "session providers" in outcome:
        print("the CUDA provider was created: this machine has a GPU")
    elif any(sign in text for sign in NO_GPU_SIGNS):
        print("the CUDA provider stopped for want of a GPU / NVIDIA driver, as expected on this machine"
              " (no CUDA ran)")
    else:
        print("NOTE: the messages above show neither a missing library nor a missing GPU; read them")


def check_torch() -> None:
    import torch

    print(f"torch {torch.__version__}; torch.version.cuda {torch.version.cuda}; "
          f"cuDNN {torch.backends.cudnn.version()}; torch.cuda.is_available() {torch.cuda.is_available()}")
    if not torch.version.cuda:
        fail("torch is not a CUDA build")


def check_extras() -> None:
    import bitsandbytes

    print(f"import bitsandbytes: {bitsandbytes.__version__}")
    ray = installed("ray")
    if ray:
        import ray as ray_module

        print(f"import ray: {ray_module.__version__}")
    else:
        print("ray: not installed (no ray extra in this image)")
    trt = installed("tensorrt-cu13")
    print(f"tensorrt-cu13: {trt or 'not installed (the tensorrt extra was skipped)'}")


if __name__ == "__main__":
    checks = {"packages": check_packages, "ort": check_ort, "loader": check_loader, "session": check_session, "torch": check_torch,
              "extras": check_extras}
    if len(sys.argv) != 2 or sys.argv[1] not in checks:
        raise SystemExit(f"usage: python - {{{'|'.join(checks)}}} < scripts/docker_smoke_gpu.py")
    checks[sys.argv[1]]()
