"""The tts recipe: the collator, the tiny run's learning targets, the full preset offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlhw.families.tts.train import TtsCollator
from tests.conftest import run_cli


def test_collator_pads_with_minus_100_and_trims_to_the_reduction_factor() -> None:
    items = [
        {"input_ids": [5, 6, 7, 2], "labels": np.full((7, 80), 1.0, np.float32), "speaker_embeddings": np.ones(512)},
        {"input_ids": [5, 2], "labels": np.full((10, 80), 2.0, np.float32), "speaker_embeddings": np.zeros(512)},
        {"input_ids": [5, 6, 2], "labels": np.full((4, 80), 3.0, np.float32), "speaker_embeddings": np.ones(512)},
    ]
    batch = TtsCollator(pad_id=1, reduction_factor=2)(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 2], [5, 2, 1, 1], [5, 6, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]
    labels = batch["labels"]
    assert labels.shape == (3, 10, 80)
    real = (labels != -100).all(-1).sum(1).tolist()
    assert real == [6, 10, 4]  # 7 frames trimmed to 6: every length a multiple of 2
    assert all(n % 2 == 0 for n in real)
    assert (labels[0, 6:] == -100).all() and (labels[2, 4:] == -100).all()
    assert (labels[0, :6] == 1.0).all() and (labels[1] == 2.0).all()
    assert batch["speaker_embeddings"].shape == (3, 512)


@pytest.mark.slow
def test_tiny_run_learns_mel_and_duration(tts_run: Path) -> None:  # noqa: F811
    result = json.loads((tts_run / "eval.json").read_text(encoding="utf-8"))
    m, base = result["metrics"], result["base"]
    assert m["mel_l1"] <= 0.5 * base["mel_l1"], (m["mel_l1"], base["mel_l1"])
    assert 0.75 <= m["duration_ratio"] <= 1.25, m["duration_ratio"]
    assert m["mcd"] < base["mcd"] and result["mcd_from"] == "mel"  # the tiny vocoder makes no speech
    assert m["clips"] == 24 and result["speaker_encoder"] == "mel-stats"
    assert "CER" not in m and m["cer_skipped"] == "no eval.asr_model given"
    summary = json.loads((tts_run / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["model"]["added_tokens"] == len(summary["data"]["extension"]) > 20
    report = (tts_run / "report.md").read_text(encoding="utf-8")
    assert "## Evaluation" in report and "not speech" in report
    code, out = run_cli("evaluate", str(tts_run))  # reloads the run: the same clips, masks and numbers
    assert code == 0, out
    again = json.loads((tts_run / "eval.json").read_text(encoding="utf-8"))["metrics"]
    assert again["mel_l1"] == pytest.approx(m["mel_l1"], abs=1e-5)
    assert again["duration_ratio"] == pytest.approx(m["duration_ratio"], abs=1e-9)


@pytest.mark.slow
def test_sample_wavs_are_16k_mono_pcm16_of_the_generated_length(tts_run: Path) -> None:  # noqa: F811
    samples = json.loads((tts_run / "eval.json").read_text(encoding="utf-8"))["samples"]
    assert len(samples) == 2
    for sample in samples:
        info = sf.info(sample["wav"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == sample["frames"] * 256
        assert Path(sample["plot"]).is_file()
    steps = sorted((tts_run / "samples").glob("step-*"))
    assert steps and all(len(list(d.glob("*.wav"))) == 2 for d in steps)  # written at each evaluation
    assert (tts_run / "plots" / "clips_per_speaker.png").is_file()


def test_full_preset_offline_fails_fast_naming_ids_data_dir_and_tiny(tmp_path: Path) -> None:
    code, out = run_cli("train", "tts", "--output-dir", str(tmp_path / "run"))
    assert code != 0
    assert "Traceback" not in out
    for needle in ("microsoft/speecht5_tts", "microsoft/speecht5_hifigan", "microsoft/wavlm-base-plus-sv",
                   "--data-dir", "--preset tiny"):
        assert needle in out, out
