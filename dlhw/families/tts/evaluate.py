"""TTS evaluation on held-out clips: mel L1, mel-cepstral distortion, duration ratio, speaker similarity, CER.

Each held-out clip is synthesized with its own speaker's x-vector (batched, per-item stop) and
compared with its recording's log-mel frames (SpeechT5's feature extractor):

- **mel L1**: mean |generated - reference| of log10-mel values along the DTW alignment of the
  two frame sequences (the lengths differ, so frame i is not frame i);
- **MCD** (dB): mel-cepstral distortion as TTS papers report it (Kubichek 1993; Kominek et al. 2008),
  ``10 / ln 10 * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)`` over DTW-aligned frames, ``c_0`` excluded,
  SPTK-style mel-cepstra (alpha 0.42) of the generated and the recorded waveforms
  (:mod:`dlhw.families.tts.metrics`) -- with the tiny preset's random vocoder, of the spectra the two
  log-mel spectrograms imply (``mcd_from`` in eval.json says which);
- **duration ratio**: generated frames / reference frames (mean over clips; 1 is right);
- **speaker similarity**: cosine of the x-vectors of generated and reference audio (with a tiny,
  random vocoder the generated "audio" is not speech, so the x-vector is taken from the mel
  frames where the provider allows it -- the run's eval.json says which);
- **CER** (jiwer) of an ASR transcript of the generated audio when ``eval.asr_model`` is set and loads
  (skipped offline, saying so).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dlhw.core.atomic import write_json_atomic
from dlhw.core.runs import RunFiles, read_json
from dlhw.families.tts.data import Utterance
from dlhw.families.tts.infer import Speech, Synthesizer, write_wav
from dlhw.families.tts.metrics import (
    cepstral_distortion,
    character_error_rate,
    dtw_path,
    mel_cepstra_from_log_mel,
    mel_cepstral_distortion,
)

logger = logging.getLogger(__name__)


def mel_scores(generated: np.ndarray, reference: np.ndarray, generated_wave: np.ndarray,
               reference_wave: np.ndarray, mel_filters: np.ndarray | None = None) -> dict[str, float]:
    """One clip's mel L1 (log10-mel frames, DTW-aligned under L1), its MCD and its duration ratio.

    MCD compares the mel-cepstra of the two waveforms; given ``mel_filters`` (the tiny preset's random
    vocoder makes no speech), those the two log-mel spectrograms imply instead.
    """
    gi, ri = dtw_path(generated, reference, metric="cityblock")
    l1 = float(np.abs(generated[gi] - reference[ri]).mean())
    if mel_filters is None:
        mcd = mel_cepstral_distortion(generated_wave, reference_wave)
    else:
        mcd = cepstral_distortion(mel_cepstra_from_log_mel(generated, mel_filters),
                                  mel_cepstra_from_log_mel(reference, mel_filters))
    return {"mel_l1": l1, "mcd": mcd, "duration_ratio": len(generated) / len(reference)}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-9))


def _asr(model_id: str | None) -> tuple[Any, str | None]:
    if not model_id:
        return None, "no eval.asr_model given"
    try:
        from transformers import pipeline

        return pipeline("automatic-speech-recognition", model=model_id), None
    except Exception as err:  # noqa: BLE001 - offline or unknown id: the metric is skipped, saying why
        return None, f"{model_id} could not be loaded ({type(err).__name__}); CER skipped"


def score(synth: Synthesizer, clips: list[Utterance], vectors: list[np.ndarray], encoder: Any, batch_size: int,
          asr_model: str | None = None, from_mel: bool = False) -> tuple[dict[str, Any], list[tuple[Utterance, Speech, np.ndarray]]]:
    """Synthesize ``clips`` with their own x-vectors and score them against their recordings."""
    from transformers import SpeechT5FeatureExtractor

    features = SpeechT5FeatureExtractor()
    rows: list[dict[str, float]] = []
    outputs = []
    asr, asr_note = _asr(asr_model)
    for start in range(0, len(clips), batch_size):
        chunk = clips[start:start + batch_size]
        speech = synth.synthesize_pieces([u.text for u in chunk], vectors[start:start + batch_size])
        for u, sp in zip(chunk, speech, strict=True):
            wave = u.waveform()
            ref = np.asarray(features(audio_target=wave, sampling_rate=16000).input_values[0])  # (T, 80)
            row = mel_scores(sp.mel, ref, sp.waveform, wave, features.mel_filters if from_mel else None)
            if from_mel and hasattr(encoder, "embed_mels"):
                pair = encoder.embed_mels([sp.mel, ref])
            else:
                pair = encoder.embed([sp.waveform, wave])
            row["speaker_similarity"] = cosine(pair[0], pair[1])
            if asr is not None:
                row["cer"] = character_error_rate(asr(sp.waveform)["text"], u.text)
            rows.append(row)
            outputs.append((u, sp, ref))
    metrics: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    metrics["duration_ratio_median"] = float(np.median([r["duration_ratio"] for r in rows]))
    metrics["clips"] = len(rows)
    if asr is None:
        metrics["cer_skipped"] = asr_note
    return metrics, outputs


SAMPLES_DIR = "samples"
"""This family's own run folder (beside those :class:`dlhw.core.runs.RunFiles` names): generated WAVs."""


def write_samples(outputs: list[tuple[Utterance, Speech, np.ndarray]], out_dir: Path, plot_dir: Path, n: int,
                  tag: str) -> list[dict[str, Any]]:
    """The first ``n`` generated clips as WAVs and generated-vs-reference spectrogram plots."""
    from dlhw.families.tts.report import plot_spectrograms

    written = []
    for i, (u, sp, ref) in enumerate(outputs[:n]):
        wav = out_dir / f"{tag}-{i}.wav"
        write_wav(wav, sp.waveform)
        png = plot_spectrograms(sp.mel, ref, plot_dir / f"spectrogram-{tag}-{i}.png", u.text)
        written.append({"text": u.text, "speaker": u.speaker_id, "wav": str(wav), "plot": str(png),
                        "frames": sp.frames, "reference_frames": len(ref)})
    return written


def evaluate_loaded(run_dir: Path, synth: Synthesizer, clips: list[Utterance], vectors: list[np.ndarray],
                    encoder: Any, config: Any, from_mel: bool) -> dict[str, Any]:
    metrics, outputs = score(synth, clips, vectors, encoder, config.eval.batch_size, config.eval.asr_model, from_mel)
    files = RunFiles(run_dir)
    samples = write_samples(outputs, run_dir / SAMPLES_DIR, files.plots, config.eval.samples, "final")
    base = read_json(files.base_eval).get("metrics", {})
    change = {k: (metrics[k] - base[k]) / base[k] for k in ("mel_l1", "mcd") if base.get(k)}
    result = {"split": "val", "metrics": metrics, "base": base, "relative_change_from_base": change,
              "speaker_encoder": encoder.name, "speaker_similarity_from": "mel" if from_mel else "audio",
              "mcd_from": "mel" if from_mel else "audio",
              "samples": samples}
    write_json_atomic(files.eval, result)
    logger.info(f"held-out: mel L1 {metrics['mel_l1']:.3f} (untrained {base.get('mel_l1', float('nan')):.3f}), MCD "
                f"{metrics['mcd']:.2f} dB, duration ratio {metrics['duration_ratio']:.3f}, speaker similarity "
                f"{metrics['speaker_similarity']:.3f}")
    return result


def heldout_set(run_dir: Path, synth: Synthesizer) -> tuple[Any, list[Utterance], list[np.ndarray], Any, bool]:
    """The run's config, its held-out clips (``eval.examples`` of the val split), their x-vectors, the
    run's speaker encoder, and whether speaker similarity is taken from mel frames (tiny vocoder)."""
    from dlhw.config import from_dict
    from dlhw.core.runs import run_config_dict
    from dlhw.families.tts.config import TtsConfig
    from dlhw.families.tts.data import load_speech
    from dlhw.families.tts.model import clip_xvectors, encoder_by_name

    config = from_dict(TtsConfig, run_config_dict(run_dir))
    clips = load_speech(config.data, config.seed).val[: config.eval.examples]
    encoder = encoder_by_name(synth.info["speaker_encoder"], config.model)
    vectors = clip_xvectors(encoder, clips, config.data.source)
    return config, clips, vectors, encoder, bool(synth.info.get("tiny_vocoder"))


def evaluate_tts_run(run_dir: Path, batch_size: int | None = None, device: str | None = None) -> dict[str, Any]:
    """``dlhw evaluate RUN`` for tts runs: reload the run and its held-out clips, synthesize and score."""
    from dlhw.families.tts.infer import load_synthesizer
    from dlhw.reports.run_report import write_run_report

    synth = load_synthesizer(run_dir, "torch", device or "cpu")
    config, clips, vectors, encoder, from_mel = heldout_set(run_dir, synth)
    if batch_size:
        config.eval.batch_size = batch_size
    result = evaluate_loaded(run_dir, synth, clips, vectors, encoder, config, from_mel)
    write_run_report(run_dir)
    return result
