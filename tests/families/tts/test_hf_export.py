"""``dlhw export RUN --hf`` on a TTS run: SpeechT5 + ``vocoder/`` + ``speakers.json`` that transformers' own
classes load and synthesize with."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_tts_exports_speecht5_and_its_vocoder_that_transformers_loads(tts_run, tmp_path):
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer

    from dlhw.families.tts.model import load_run_bundle

    out = tmp_path / "hf"
    code, log = run_cli("export", str(tts_run), "--hf", "--out", str(out))
    assert code == 0, log
    model = SpeechT5ForTextToSpeech.from_pretrained(out, local_files_only=True).eval()
    vocoder = SpeechT5HifiGan.from_pretrained(out / "vocoder", local_files_only=True).eval()
    bundle = load_run_bundle(tts_run)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in bundle.model.state_dict().items())
    speakers = json.loads((out / "speakers.json").read_text(encoding="utf-8"))["speakers"]
    assert speakers == bundle.speakers
    ids = SpeechT5Tokenizer.from_pretrained(out)("سلام", return_tensors="pt")["input_ids"]
    speaker = torch.tensor(next(iter(speakers.values())))[None]  # (1, 512)
    torch.manual_seed(0)
    waveform = model.generate_speech(ids, speaker, vocoder=vocoder, maxlenratio=2.0)
    assert waveform.ndim == 1 and waveform.numel() > 0
    assert "text-to-speech" in (out / "README.md").read_text(encoding="utf-8")
