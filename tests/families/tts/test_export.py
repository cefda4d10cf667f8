"""TTS export: three graphs, parity on mel frames and stop steps, batched synthesis equal to one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlhw.families.tts.infer import load_synthesizer, split_text


@pytest.mark.slow
def test_export_records_parity_and_its_files(tts_run: Path) -> None:  # noqa: F811
    export = tts_run / "export" / "onnx"
    meta = json.loads((export / "export.json").read_text(encoding="utf-8"))
    assert meta["files"] == {"encoder": "encoder.onnx", "decoder_step": "decoder_step.onnx",
                             "postnet_vocoder": "postnet_vocoder.onnx"}
    parity = meta["parity"]
    assert parity["max_abs_diff"]["mel_frames"] <= 1e-3 and parity["max_abs_diff"]["stop_prob"] <= 1e-3
    assert len(parity["frames"]) == 4 and parity["steps_compared"] == max(parity["frames"]) // 2  # every step (r = 2)
    assert all((export / f).is_file() for f in meta["files"].values())
    assert (export / "speakers.json").is_file() and (export / "spm_char.model").is_file()


@pytest.mark.slow
def test_batched_synthesis_equals_one_at_a_time(tts_run: Path) -> None:  # noqa: F811
    synth = load_synthesizer(tts_run, "torch")
    texts = ["سلام", "این کتاب روی میز است", "باران می‌بارد و دریا آبی است", "ماه"]
    together = synth.synthesize(texts)
    for text, batched in zip(texts, together, strict=True):
        alone = synth.synthesize([text])[0]
        assert alone.frames == batched.frames  # each utterance stops on its own step
        assert float(np.abs(alone.mel - batched.mel).max()) < 1e-3
    assert len({s.frames for s in together}) > 1


def test_split_text_prefers_sentence_ends_then_commas() -> None:
    fits = lambda t: len(t) <= 20  # noqa: E731
    assert split_text("یک دو سه. چهار پنج شش. هفت", fits) == ["یک دو سه.", "چهار پنج شش. هفت"]
    assert split_text("الف ب پ ت ث, ج چ ح خ د ذ ر", fits) == ["الف ب پ ت ث,", "ج چ ح خ د ذ ر"]
    pieces = split_text("آ" * 50, fits)
    assert "".join(pieces) == "آ" * 50 and all(fits(p) for p in pieces)
