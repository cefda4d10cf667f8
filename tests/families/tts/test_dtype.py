"""`--dtype` for speech synthesis: bf16 mel frames against fp32 (slow: a trained run).

Tolerances, measured on the tiny run with six sentences on the CPU (refined log-mel values up to 7.7,
standard deviation 1.2): bf16 and fp32 decoded the same number of frames, and the mels differed by
at most 0.052 (0.010 on average); bf16 batched vs one sentence at a time: at most 0.031, fp32: 3e-6.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dlhw.families.tts.infer import Speech, load_synthesizer, open_predictor

pytestmark = pytest.mark.slow

MEL_ATOL = 0.15
"""Largest |bf16 - fp32| refined log-mel value (3x the measured 0.052)."""
MEL_MEAN_ATOL = 0.03
"""Mean |bf16 - fp32| over an utterance's frames (3x the measured 0.0105)."""
TEXTS = ["سلام، امروز هوا خوب است.", "من به مدرسه می‌روم.", "این یک آزمایش است.", "کتاب را روی میز گذاشتم.",
         "ساعت ۱۰ صبح است.", "او فردا به تهران می‌آید."]


def _compare(fp32: list[Speech], other: list[Speech]) -> float:
    """Checks frame counts and mels; returns the largest mel difference."""
    assert [s.frames for s in other] == [s.frames for s in fp32]
    largest = 0.0
    for a, b in zip(fp32, other, strict=True):
        diff = np.abs(a.mel - b.mel)  # (T, 80)
        assert b.mel.dtype == np.float32 and b.waveform.dtype == np.float32
        assert diff.max() <= MEL_ATOL and diff.mean() <= MEL_MEAN_ATOL, \
            f"|mel difference| max {diff.max():.3f}, mean {diff.mean():.4f}"
        largest = max(largest, float(diff.max()))
    return largest


@pytest.fixture(scope="module")
def tts_tiny(tiny_run: Any) -> Path:
    """The session's tiny tts run (the `tts_run` fixture exports it too; nothing here needs the export)."""
    return tiny_run("tts")


def test_bf16_on_the_cpu_speaks_as_fp32_does(tts_tiny: Path) -> None:
    fp32 = load_synthesizer(tts_tiny, "torch", "cpu").synthesize(TEXTS)
    bf16 = open_predictor(str(tts_tiny), "torch", "cpu", dtype="bf16").synth  # the batch verb's path
    assert bf16.graphs.model.dtype is torch.bfloat16
    assert _compare(fp32, bf16.synthesize(TEXTS)) > 0.0  # within tolerance, and not the fp32 model again


@pytest.mark.gpu
def test_cuda_bf16_speaks_as_fp32_and_batches_as_one_at_a_time(tts_tiny: Path, record_property: Any) -> None:
    fp32 = load_synthesizer(tts_tiny, "torch", "cuda").synthesize(TEXTS)
    bf16 = load_synthesizer(tts_tiny, "torch", "cuda", torch.bfloat16)
    batched = bf16.synthesize(TEXTS)
    record_property("bf16_vs_fp32_max_mel_diff", round(_compare(fp32, batched), 4))
    alone = [bf16.synthesize([t])[0] for t in TEXTS]
    record_property("batched_vs_alone_max_mel_diff", round(_compare(batched, alone), 4))
