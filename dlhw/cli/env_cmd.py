"""``dlhw env``: the facts a bug report needs, in one paste."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from dlhw.core import threads as thread_policy

PACKAGES = ("torch", "torchvision", "transformers", "accelerate", "datasets", "peft", "trl",
            "onnx", "onnxruntime", "onnxruntime-gpu", "onnxruntime-genai", "tensorrt-cu13")

# Distributions that install the module ``onnxruntime``: with two of them installed, ``import
# onnxruntime`` loads whichever pip wrote last, so ``dlhw env`` names the one it loaded.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def onnxruntime_info() -> dict[str, Any]:
    """The ONNX Runtime ``import onnxruntime`` loads: its package, version and providers, and every
    distribution installed that writes the same module (more than one is a broken environment)."""
    installed = {name: version for name in ORT_DISTRIBUTIONS if (version := package_version(name))}
    info: dict[str, Any] = {"package": None, "version": None, "providers": [], "installed": installed}
    try:
        import onnxruntime
    except ImportError:
        return info
    try:
        from onnxruntime.capi import build_and_package_info

        info["package"] = build_and_package_info.package_name
    except ImportError:  # builds without the module: the one distribution installed, if only one
        info["package"] = next(iter(installed)) if len(installed) == 1 else None
    info["version"] = onnxruntime.__version__
    info["providers"] = onnxruntime.get_available_providers()
    return info


def describe_onnxruntime(ort: dict[str, Any]) -> str:
    """One line: the loaded package and version, and a warning naming any second distribution."""
    if ort["version"] is None:
        return "not installed (pip install 'dlhw[cpu]' or 'dlhw[gpu]')"
    line = f"{ort['package'] or 'unknown package'} {ort['version']}"
    others = {name: v for name, v in ort["installed"].items() if name != ort["package"]}
    if others:
        line += ("; ALSO INSTALLED: " + ", ".join(f"{n} {v}" for n, v in others.items())
                 + " -- both write the module onnxruntime; uninstall both, reinstall one")
    return line


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> dict[str, bool]:
    """AVX2 / AVX-512 / VNNI support, read from /proc/cpuinfo (Linux) or the platform."""
    text = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")), "")
    flags = set(text.split(":", 1)[-1].split())
    return {
        "avx2": "avx2" in flags,
        "avx512": any(f.startswith("avx512f") for f in flags),
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
    }


def collect() -> dict[str, Any]:
    info: dict[str, Any] = {
        "dlhw": package_version("dlhw"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), **cpu_flags()},
        "threads": thread_policy.applied().as_dict(),
        "packages": {name: package_version(name) or "not installed" for name in PACKAGES},
    }
    try:
        import torch

        cuda = torch.cuda.is_available()
        info["torch_build"] = {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None}
        info["cuda_devices"] = [
            {"index": i, "name": torch.cuda.get_device_name(i),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())
        ] if cuda else []
    except ImportError:
        info["cuda_devices"] = []
    info["onnxruntime"] = onnxruntime_info()
    info["onnxruntime_providers"] = info["onnxruntime"]["providers"]
    from huggingface_hub import constants

    info["hf_cache"] = constants.HF_HUB_CACHE
    info["hf_offline"] = bool(constants.HF_HUB_OFFLINE)
    info["dlhw_cache"] = os.environ.get("DLHW_CACHE_DIR", str(Path.home() / ".cache" / "dlhw"))
    return info


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def env_cmd(as_json: bool) -> None:
    """Print versions (Python, torch, transformers, peft, trl, onnx, the ONNX Runtime
    package that `import onnxruntime` loads and its providers, tensorrt), CUDA devices and memory, CPU flags (AVX2, AVX-512, VNNI), the CPU threads dlhw uses and why, the Hugging
    Face cache directory and whether offline mode is on -- paste it into bug reports."""
    info = collect()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    cpu = info["cpu"]
    lines = [
        f"dlhw            {info['dlhw']}",
        f"python          {info['python']} ({info['platform']})",
        *(f"{name:<15} {version}" for name, version in info["packages"].items()),
        f"torch build     CUDA {info.get('torch_build', {}).get('cuda')}",
        f"ort package     {describe_onnxruntime(info['onnxruntime'])}",
        "ort providers   " + (", ".join(info["onnxruntime_providers"]) or "none (onnxruntime not installed)"),
        "cuda devices    " + ("; ".join(f"{d['index']}: {d['name']} {d['memory_gib']} GiB" for d in info["cuda_devices"])
                              or "none"),
        f"cpu             {cpu['model']}, {cpu['cores']} cores; AVX2 {'yes' if cpu['avx2'] else 'no'}, "
        f"AVX-512 {'yes' if cpu['avx512'] else 'no'}, VNNI {'yes' if cpu['vnni'] else 'no'}",
        f"threads         {thread_policy.applied().describe()}",
        f"hf cache        {info['hf_cache']}",
        f"hf offline      {'on' if info['hf_offline'] else 'off'} (HF_HUB_OFFLINE)",
        f"dlhw cache      {info['dlhw_cache']}",
    ]
    click.echo("\n".join(lines))
