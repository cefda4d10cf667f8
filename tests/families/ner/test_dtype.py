"""`--dtype` and `--device` for NER: bf16 tags and logits against fp32, the device line, the refusals.

Tolerances, measured on the tiny run's 300 test sentences (3521 words, logits up to 15 in size):
bf16 vs fp32 on the CPU, tags agreed on every word and the label-position logits differed by at most
0.09; bf16 batched vs one sentence at a time, by at most 0.06 with the same tags.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dlhw.families.ner.infer import load_tagger
from tests.conftest import run_cli

LOGIT_ATOL = 0.3
"""Largest |bf16 - fp32| label-position logit (3x the measured 0.09)."""
TAG_AGREEMENT = 0.99
"""Share of words whose bf16 tag equals the fp32 one (measured: all)."""
no_cuda_here = pytest.mark.skipif(torch.cuda.is_available(), reason="what a machine without CUDA answers")


def _test_sentences(run: Path) -> list[list[str]]:
    from dlhw.core.registry import resolve_config
    from dlhw.core.runs import RunFiles
    from dlhw.families.ner.data import prepare_ner_data

    config = resolve_config(config_file=RunFiles(run).config, preset="tiny")
    return [s.tokens for s in prepare_ner_data(config.data, config.seed).test]


def _compare(a: tuple[list[list[str]], list[np.ndarray]], b: tuple[list[list[str]], list[np.ndarray]]) -> float:
    """The largest logit difference, after checking tags and logits are within the tolerances."""
    tags_a, tags_b = [t for s in a[0] for t in s], [t for s in b[0] for t in s]
    agreement = np.mean([x == y for x, y in zip(tags_a, tags_b, strict=True)])
    assert agreement >= TAG_AGREEMENT, f"tags agree on {agreement:.2%} of {len(tags_a)} words"
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a[1], b[1], strict=True) if len(x))
    assert diff <= LOGIT_ATOL, f"max |logit difference| {diff:.3f}"
    return diff


@pytest.mark.slow
def test_bf16_on_the_cpu_tags_as_fp32_does(ner_run: Path) -> None:
    sentences = _test_sentences(ner_run)
    fp32 = load_tagger(ner_run, "torch", "cpu", dtype="fp32").tag_with_scores(sentences)
    bf16 = load_tagger(ner_run, "torch", "cpu", dtype="bf16").tag_with_scores(sentences)
    assert _compare(fp32, bf16) > 0.0  # within tolerance, and not the fp32 model again


@pytest.mark.slow
@no_cuda_here
def test_the_verb_reports_its_device_and_bf16_on_the_cpu_tags_the_same(ner_run: Path, tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("Helen Adams flew from Lima to Quito on 3 May 2021 .\nAli Rezaei works in Paris .\n",
                      encoding="utf-8")
    records = {}
    for dtype, line in (("auto", "torch on cpu (auto: no CUDA GPU visible), float32"),
                        ("bf16", "torch on cpu (auto: no CUDA GPU visible), bfloat16")):
        out = tmp_path / f"{dtype}.jsonl"
        done = subprocess.run([sys.executable, "-m", "dlhw", "ner", str(source), "--model", str(ner_run), "--out",
                               str(out), "--dtype", dtype], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0] == line  # the first line, before the job starts
        records[dtype] = out.read_text(encoding="utf-8").splitlines()
    assert len(records["auto"]) == 2 and records["bf16"] == records["auto"]


@no_cuda_here
@pytest.mark.parametrize(("flags", "message"), [
    (("--device", "cuda"), "error: --device cuda: CUDA is not available on this machine (torch sees no GPU); use "
                           "--device auto or cpu"),
    (("--dtype", "fp16"), "error: --dtype fp16 is for CUDA GPUs; on the CPU use --dtype bf16 or fp32"),
])
def test_cuda_and_fp16_without_a_gpu_exit_2_in_one_line_within_seconds(tmp_path: Path, flags: tuple[str, ...],
                                                                       message: str) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("Ali went to Paris .\n", encoding="utf-8")
    model = tmp_path / "run"  # refused before any model is read
    model.mkdir()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlhw", "ner", str(source), "--model", str(model), "--out",
                           str(tmp_path / "out.jsonl"), *flags], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    assert (done.returncode, done.stderr, done.stdout) == (2, message + "\n", "")
    assert seconds < 5, f"took {seconds:.1f} s"
    assert not (tmp_path / "out.jsonl").exists()


def test_dtype_with_an_onnx_backend_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("Ali went to Paris .\n", encoding="utf-8")
    code, out = run_cli("ner", str(source), "--model", str(tmp_path), "--out", str(tmp_path / "o.jsonl"),
                        "--backend", "onnxruntime", "--dtype", "bf16")
    assert code == 2
    assert out.startswith("error: --dtype bf16 is for --backend torch; an ONNX export carries its own precision")


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_bf16_tags_as_fp32_and_batches_as_one_at_a_time(ner_run: Path, record_property: Any) -> None:
    sentences = _test_sentences(ner_run)
    fp32 = load_tagger(ner_run, "torch", "cuda", dtype="fp32").tag_with_scores(sentences)
    bf16 = load_tagger(ner_run, "torch", "cuda", dtype="bf16")
    batched = bf16.tag_with_scores(sentences)
    record_property("bf16_vs_fp32_max_logit_diff", round(_compare(fp32, batched), 4))
    alone = [bf16.tag_with_scores([s]) for s in sentences[:60]]
    record_property("batched_vs_alone_max_logit_diff", round(_compare(
        ([t[0][0] for t in alone], [t[1][0] for t in alone]), (batched[0][:60], batched[1][:60])), 4))
