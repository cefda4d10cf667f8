#!/usr/bin/env python3
"""The one prepared GPU check: everything dlhw promises on CUDA, run in one go, written to one JSON.

A GPU machine lent for checks has no network, its own torch (2.11, CUDA 13), Python 3.12 and many of
dlhw's dependencies, and takes at most 64 MiB of files per command. So the check installs what it lacks
from wheel sets fetched here by ``scripts/gpu_wheels.sh`` (each at most 60 MiB, one set per command,
``pip install --no-deps --target .gpu-site``), runs dlhw from the working tree on top of the machine's
own torch, says which versions it ran, and runs:

- ``pytest -m gpu``: every test marked ``gpu`` -- each family's tiny preset trained on CUDA and batch-run
  with ``--device cuda`` (bf16 where supported) with batched output equal to one-at-a-time output and
  bf16 within the family's tolerance of fp32, QLoRA NF4 and 8-bit training steps, ONNX Runtime IO
  binding, TensorRT where installed; the numbers the tests measure come back through
  ``record_property`` into the JSON;
- the 2:4 sparse benchmark (``benchmarks/prune_sparse24.py``);
- the generation benchmark at batch 32 (``benchmarks/generation_gpu.py``).

Each step has its own time limit and the whole fits in 8 minutes on an H100/H200-class machine; a step
that fails or runs out of time is recorded as such and the others still run.

    python scripts/gpu_check.py --dry-run                        # here: the plan, the wheel sets and sizes
    python3 scripts/gpu_check.py --install .gpu-wheels/bitsandbytes   # GPU machine, command 1
    python3 scripts/gpu_check.py --install .gpu-wheels/stack --out $OUT/gpu_check.json   # command 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / ".gpu-site"
"""Where the carried wheels are installed (ignored by git; kept between commands while the machine is warm)."""
WHEELS = ROOT / ".gpu-wheels"
SET_LIMIT = 60 * 2**20
BUDGET_S = 8 * 60
PACKAGES = ("torch", "torchvision", "transformers", "tokenizers", "huggingface-hub", "accelerate", "peft", "trl",
            "datasets", "bitsandbytes", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "seqeval",
            "rouge-score", "bert-score", "sentencepiece", "soundfile", "soxr", "numpy")


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    command: tuple[str, ...]
    timeout_s: int


def steps(junit: Path) -> list[Step]:
    py = sys.executable
    return [
        Step("pytest-gpu", "every test marked gpu: each family's tiny preset trained on CUDA and batch-run with "
             "--device cuda (bf16 vs fp32 within tolerance, batched == one at a time), QLoRA NF4 and 8-bit steps, "
             "ONNX Runtime IO binding, TensorRT where installed",
             (py, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rs", f"--junitxml={junit}",
              "tests"), 330),
        Step("sparse-2:4", "2:4 semi-structured sparse Linear layers vs dense, bf16 (benchmarks/prune_sparse24.py)",
             (py, "benchmarks/prune_sparse24.py", "--dtype", "bf16"), 30),
        Step("generation-b32", "greedy generation at batch 32: torch eager vs static cache + compile vs ONNX "
             "Runtime with and without IO binding (benchmarks/generation_gpu.py)",
             (py, "benchmarks/generation_gpu.py", "--batch", "32", "--prompts", "64", "--new-tokens", "64",
              "--layers", "16"), 120),
    ]


def wheel_sets(folder: Path = WHEELS) -> list[tuple[str, int, list[str]]]:
    """``(set folder, bytes, wheel names)`` of every set fetched by ``scripts/gpu_wheels.sh``."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        wheels = sorted(path.glob("*.whl"))
        found.append((str(path.relative_to(ROOT)), sum(w.stat().st_size for w in wheels), [w.name for w in wheels]))
    return found


def dry_run() -> int:
    sets = wheel_sets()
    print(f"dlhw GPU check: {len(steps(Path('gpu.xml')))} steps in at most {BUDGET_S // 60} minutes, one JSON "
          "(--out FILE)\n")
    print("environment     versions of Python, torch, CUDA, the GPU and every package below; what is missing")
    for step in steps(Path("$TMP/gpu.xml")):
        print(f"{step.name:<15} {step.what}\n{'':16}$ {' '.join(step.command[1:])}   (limit {step.timeout_s} s)")
    print("\npytest -m gpu collects these here (each skips without CUDA):")
    collected = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "--collect-only", "-q",
                                "-p", "no:cacheprovider", "tests"], cwd=ROOT, capture_output=True, text=True)
    tests = [line for line in collected.stdout.splitlines() if "::" in line]
    print("\n".join(f"    {t}" for t in tests) or f"    (collection failed: {collected.stdout[-500:]})")
    print("\nwheel sets, one per device command (each at most 60 MiB):")
    if not sets:
        print("    none fetched: run scripts/gpu_wheels.sh first")
        return 1
    over = False
    for i, (folder, size, names) in enumerate(sets, start=1):
        last = i == len(sets)
        out = " --out $OUT/gpu_check.json" if last else ""
        print(f"  command {i}: carry {folder} ({size / 2**20:.1f} MiB, {len(names)} wheels): "
              f"python3 scripts/gpu_check.py --install {folder}{out}")
        print("      " + ", ".join(names))
        over |= size > SET_LIMIT
    if over:
        print("a set is over 60 MiB: split it in scripts/gpu_wheels.sh")
    return 1 if over else 0


def install(folder: Path) -> None:
    """Install one carried set into :data:`SITE` without dependencies (the machine has the rest)."""
    wheels = sorted(str(w) for w in folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"{folder}: no wheels; fetch them with scripts/gpu_wheels.sh and carry the folder")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--no-cache-dir", "--upgrade", "--target", str(SITE), *wheels], check=True)
    print(f"installed {len(wheels)} wheels from {folder} into {SITE}")


def environment() -> dict[str, object]:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    info: dict[str, object] = {
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cuda_available": cuda, "packages": versions,
        "dlhw_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                      text=True).stdout.strip() or None,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1),
                    bf16=torch.cuda.is_bf16_supported(), gpus=torch.cuda.device_count())
    try:
        import onnxruntime

        info["ort_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["ort_providers"] = None
    return info


def junit_results(path: Path) -> list[dict[str, object]]:
    """Each test's outcome, time and the numbers it recorded (``record_property``)."""
    if not path.is_file():
        return []
    results = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        message = ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                message = (node.get("message") or node.text or "")[:400]
        properties = {p.get("name"): _number(p.get("value")) for p in case.iter("property")}
        results.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                        "seconds": round(float(case.get("time") or 0), 2), **({"message": message} if message else {}),
                        **({"measured": properties} if properties else {})})
    return results


def _number(text: str | None) -> object:
    try:
        return json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return text


def run_step(step: Step, env: dict[str, str], deadline: float) -> dict[str, object]:
    limit = max(1, min(step.timeout_s, int(deadline - time.monotonic())))
    start = time.monotonic()
    try:
        proc = subprocess.run(step.command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        code: int | None = proc.returncode
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code = None
        output = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
    seconds = round(time.monotonic() - start, 1)
    status = "timeout" if code is None else ("ok" if code == 0 else f"exit {code}")
    print(f"{step.name:<15} {status:<8} {seconds:7.1f} s", flush=True)
    lines = [line for line in output.splitlines() if line.strip()]
    return {"name": step.name, "what": step.what, "command": " ".join(step.command[1:]), "status": status,
            "seconds": seconds, "limit_s": limit, "output_tail": lines[-40:],
            "ratios": [line.strip() for line in lines if re.search(r"\d\.\d+\s*[x×]", line)][:20]}


def check(out: Path, allow_cpu: bool = False) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(SITE), str(ROOT), os.environ.get("PYTHONPATH"))
                                                         if p and Path(p).exists()),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    sys.path[:0] = [str(SITE), str(ROOT)]
    import torch

    if not torch.cuda.is_available() and not allow_cpu:
        print("gpu_check: torch sees no CUDA GPU here; this check is for a GPU machine (--dry-run shows the plan, "
              "--allow-cpu rehearses it: every gpu test skips)", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + BUDGET_S
    report: dict[str, object] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment()}
    print(json.dumps(report["environment"], indent=1), flush=True)
    junit = out.with_name(out.stem + ".junit.xml")
    results = []
    for step in steps(junit):
        if time.monotonic() >= deadline:
            results.append({"name": step.name, "status": "not run (the 8-minute budget was spent)"})
            continue
        results.append(run_step(step, env, deadline))
        if step.name == "pytest-gpu":
            results[-1]["tests"] = junit_results(junit)
    report["steps"] = results
    report["seconds"] = round(time.monotonic() - started, 1)
    tests = [t for r in results for t in r.get("tests", [])]  # type: ignore[attr-defined]
    report["summary"] = {"steps_ok": sum(r["status"] == "ok" for r in results), "steps": len(results),
                         **{k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped")}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {json.dumps(report['summary'])} in {report['seconds']} s")
    return 0 if report["summary"]["steps_ok"] == len(results) else 1  # type: ignore[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="List the steps, the gpu tests and the wheel sets.")
    parser.add_argument("--install", type=Path, metavar="SET", help="Install one wheel set into .gpu-site first.")
    parser.add_argument("--out", type=Path, metavar="FILE", help="Run the check and write its JSON here.")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="Run without a GPU (a rehearsal of the mechanics: the gpu tests skip).")
    args = parser.parse_args()
    if args.dry_run:
        return dry_run()
    if args.install:
        install(args.install)
    if args.out:
        return check(args.out, args.allow_cpu)
    if not args.install:
        parser.error("give --dry-run, --install SET and/or --out FILE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
