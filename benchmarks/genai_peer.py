"""ONNX Runtime GenAI as a peer for dlhw's generation benchmarks (never a dependency of dlhw).

Where ``onnxruntime-genai`` and ``onnx-ir`` (its model builder needs it) import -- ``pip install
'dlhw[bench]'`` -- a benchmark builds GenAI's fp32 CPU graph of the very weights it times dlhw on, and
decodes the same prompts in the same length-sorted batches, greedily. Batches are padded on the
right: GenAI reads left padding wrongly (its tokens then differ from the model's).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


def genai_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime_genai", "onnx_ir"))


def build_genai(model, tokenizer, root: Path) -> Path:
    """ONNX Runtime GenAI's builder graph (fp32, CPU) of ``model``'s weights."""
    source, out = root / "hf", root / "genai"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    done = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(out),
                           "-p", "fp32", "-e", "cpu", "-c", str(root / "cache")], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"onnxruntime-genai builder failed:\n{done.stderr[-2000:]}")
    return out


def genai_batched(model, prompts: list[list[int]], batch: int, new_tokens: int, pad_id: int) -> list[list[int]]:
    """Greedy tokens from GenAI over the same length-sorted batches, right-padded, in input order."""
    import numpy as np
    import onnxruntime_genai as og

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: dict[int, list[int]] = {}
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        width = max(len(prompts[i]) for i in chunk)
        ids = np.full((len(chunk), width), pad_id, dtype=np.int32)  # (B, T), pads on the right
        for row, i in enumerate(chunk):
            ids[row, :len(prompts[i])] = prompts[i]
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=width + new_tokens, min_length=width + new_tokens, do_sample=False,
                                  batch_size=len(chunk))
        generator = og.Generator(model, params)
        generator.append_tokens(ids)
        rows: list[list[int]] = [[] for _ in chunk]
        for _ in range(new_tokens):
            generator.generate_next_token()
            for row, token in enumerate(generator.get_next_tokens()):
                rows[row].append(int(token))
        out.update(zip(chunk, rows, strict=True))
    return [out[i] for i in range(len(prompts))]
