"""The tts recipe: data -> vocabulary extension -> x-vectors -> SpeechT5 with Seq2SeqTrainer -> evaluate.

Before training, the model as it starts (the tiny random model, or pretrained SpeechT5 with its
new Persian rows) is scored on the held-out clips (``base_eval.json``), so ``eval.json`` can say how
far fine-tuning moved mel L1 and MCD. At every evaluation a few held-out clips are synthesized:
their WAVs go to ``samples/step-N/`` and a generated-vs-reference spectrogram to ``plots/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback, set_seed

from dlhw.core.atomic import write_json_atomic
from dlhw.core.runs import RunFiles
from dlhw.engine.finish import finish_run
from dlhw.engine.trainer import Engine, run_training
from dlhw.families.tts.config import TtsConfig
from dlhw.families.tts.data import SpeechSplits, Utterance, load_speech
from dlhw.families.tts.evaluate import SAMPLES_DIR, evaluate_loaded, score, write_samples
from dlhw.families.tts.infer import Synthesizer, TorchGraphs, settings_from
from dlhw.families.tts.model import (
    HOP,
    SAMPLE_RATE,
    clip_xvectors,
    hub_ids,
    load_pretrained,
    require_models,
    save_run_model,
    speaker_encoder,
    tiny_speecht5,
    tiny_tokenizer,
    tiny_vocoder,
)
from dlhw.families.tts.persian_speech import (
    extend_tokenizer,
    known_characters,
    vocabulary_extension,
)
from dlhw.families.tts.report import plot_clips_per_speaker

logger = logging.getLogger(__name__)


class TtsCollator:
    """The seed's collator: pad token ids, pad log-mel targets with -100, trim targets to a multiple
    of the reduction factor, stack the speaker embeddings."""

    def __init__(self, pad_id: int, reduction_factor: int):
        self.pad_id = pad_id
        self.reduction = reduction_factor

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = len(items)
        width = max(len(i["input_ids"]) for i in items)
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long)  # (B, S)
        mask = torch.zeros(batch, width, dtype=torch.long)
        lengths = [len(i["labels"]) - len(i["labels"]) % self.reduction for i in items]
        frames = max(lengths)
        mels = items[0]["labels"].shape[1]
        labels = torch.full((batch, frames, mels), -100.0)  # (B, T, M): -100 = padding, ignored by the loss
        for b, item in enumerate(items):
            n = len(item["input_ids"])
            ids[b, :n] = torch.as_tensor(item["input_ids"])
            mask[b, :n] = 1
            labels[b, : lengths[b]] = torch.as_tensor(item["labels"][: lengths[b]])
        speakers = torch.as_tensor(np.stack([i["speaker_embeddings"] for i in items]), dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "speaker_embeddings": speakers}


class SpeechDataset(Dataset):
    """Token ids, log-mel targets (computed on first use) and the clip's x-vector."""

    def __init__(self, clips: list[Utterance], tokenizer: Any, vectors: list[np.ndarray]):
        from transformers import SpeechT5FeatureExtractor

        self.clips, self.tokenizer, self.vectors = clips, tokenizer, vectors
        self.features = SpeechT5FeatureExtractor()
        self.cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        clip = self.clips[i]
        mel = self.cache.get(i)
        if mel is None:
            mel = np.asarray(self.features(audio_target=clip.waveform(), sampling_rate=SAMPLE_RATE).input_values[0],
                             dtype=np.float32)  # (T, 80)
            if clip.audio is not None:  # in memory already: keep its features too
                self.cache[i] = mel
        return {"input_ids": self.tokenizer(clip.text).input_ids, "labels": mel,
                "speaker_embeddings": self.vectors[i]}


def within_limits(splits: SpeechSplits, tokenizer: Any, config: Any) -> dict[str, int]:
    """Drop clips whose text exceeds ``max_text_positions`` or speech ``max_speech_positions``; counts."""
    over = {"text over max_text_positions": 0, "speech over max_speech_positions": 0}

    def ok(u: Utterance) -> bool:
        if len(tokenizer(u.text).input_ids) > config.max_text_positions:
            over["text over max_text_positions"] += 1
            return False
        if u.seconds * SAMPLE_RATE / HOP + 1 > config.max_speech_positions:
            over["speech over max_speech_positions"] += 1
            return False
        return True

    splits.train = [u for u in splits.train if ok(u)]
    splits.val = [u for u in splits.val if ok(u)]
    return {k: v for k, v in over.items() if v}


def build_model(config: TtsConfig, splits: SpeechSplits, run_dir: Path) -> tuple[Any, Any, Any, list[str]]:
    """Tokenizer extended with the cleaned texts' new characters, model with resized embeddings, vocoder."""
    cfg = config.model
    if cfg.name is None:
        base = tiny_tokenizer(cfg.tiny, run_dir / "tokenizer-base")
        model = tiny_speecht5(cfg.tiny, len(base), cfg.reduction_factor or 2)
        vocoder = tiny_vocoder(cfg.tiny)
    else:
        base, model, vocoder = load_pretrained(cfg)
        if cfg.reduction_factor:
            model.config.reduction_factor = cfg.reduction_factor
    chars, _ = vocabulary_extension((u.text for u in splits.all()), known_characters(base))
    tokenizer = extend_tokenizer(base, chars, run_dir / "tokenizer")
    model.resize_token_embeddings(len(tokenizer))
    return tokenizer, model, vocoder, chars


class SynthesisSamples(TrainerCallback):
    """At each evaluation: WAVs of a few held-out clips and a generated-vs-reference spectrogram."""

    def __init__(self, run_dir: Path, make: Any, clips: list[Utterance], vectors: list[np.ndarray], encoder: Any,
                 from_mel: bool, n: int):
        self.run_dir, self.make, self.clips, self.vectors = run_dir, make, clips[:n], vectors[:n]
        self.encoder, self.from_mel = encoder, from_mel

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        if not state.is_world_process_zero or model is None or not self.clips:
            return
        was_training = model.training
        _, outputs = score(self.make(model), self.clips, self.vectors, self.encoder, len(self.clips), None, self.from_mel)
        model.train(was_training)
        tag = f"step-{state.global_step}"
        write_samples(outputs, self.run_dir / SAMPLES_DIR / tag, RunFiles(self.run_dir).plots, 1, tag)
        for i, (_, sp, _) in enumerate(outputs[1:], 1):
            from dlhw.families.tts.infer import write_wav

            write_wav(self.run_dir / SAMPLES_DIR / tag / f"{tag}-{i}.wav", sp.waveform)


def train_tts(config: TtsConfig, run_dir: Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train one tts run into ``run_dir``; returns the training summary."""
    set_seed(config.seed)
    if config.model.name is not None:  # fail before reading any data when the models are not reachable
        require_models(hub_ids(config.model))
    splits = load_speech(config.data, config.seed)
    tokenizer, model, vocoder, chars = build_model(config, splits, run_dir)
    over = within_limits(splits, tokenizer, model.config)
    data_summary = {**splits.summary(), "over_limits": over, "extension": chars}
    plot_clips_per_speaker(splits.clips_per_speaker, config.data.min_clips_per_speaker,
                           config.data.max_clips_per_speaker, RunFiles(run_dir).plot("clips_per_speaker.png"))
    logger.info(f"clips: {len(splits.train)} train / {len(splits.val)} held-out from {splits.source}; skipped "
                f"{splits.skipped or 'none'}; over limits {over or 'none'}; vocabulary +{len(chars)} characters")

    encoder = speaker_encoder(config.model)
    train_vec = clip_xvectors(encoder, splits.train, config.data.source)
    val_vec = clip_xvectors(encoder, splits.val, config.data.source)
    speakers: dict[str, list[np.ndarray]] = {}
    for clip, vec in zip(splits.train, train_vec, strict=True):
        speakers.setdefault(clip.speaker_id, []).append(vec)
    speaker_means = {s: (np.mean(v, 0) / np.linalg.norm(np.mean(v, 0))).tolist() for s, v in sorted(speakers.items())}
    tiny_voc = config.model.vocoder is None
    info = {"speaker_encoder": encoder.name, "latin": config.data.latin, "max_text_positions": model.config.max_text_positions,
            "threshold": config.eval.threshold, "max_length_ratio": config.eval.max_length_ratio, "seed": config.eval.seed,
            "tiny_vocoder": tiny_voc, "base": config.model.name or "tiny"}

    def make(m: Any) -> Synthesizer:
        return Synthesizer(TorchGraphs(m, vocoder, next(m.parameters()).device), tokenizer, speaker_means, info,
                           settings_from(m.config, info), encoder)

    held = splits.val[: config.eval.examples]
    held_vec = val_vec[: config.eval.examples]
    files = RunFiles(run_dir)
    if not files.base_eval.is_file():
        base, _ = score(make(model), held, held_vec, encoder, config.eval.batch_size, None, tiny_voc)
        write_json_atomic(files.base_eval, {"metrics": base})
        logger.info(f"before training: mel L1 {base['mel_l1']:.3f}, duration ratio {base['duration_ratio']:.3f}")

    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    extra: dict[str, Any] = {"label_names": ["labels"]}  # SpeechT5's forward also takes stop_labels (derived)
    if config.trainer.warmup_steps:
        extra["warmup_steps"] = config.trainer.warmup_steps
    engine = Engine(trainer_class=Seq2SeqTrainer, args_class=Seq2SeqTrainingArguments, args=extra)
    collator = TtsCollator(tokenizer.pad_token_id, model.config.reduction_factor)
    callback = SynthesisSamples(run_dir, make, held, held_vec, encoder, tiny_voc, config.eval.samples)
    trainer, result = run_training(
        model, SpeechDataset(splits.train, tokenizer, train_vec), SpeechDataset(splits.val, tokenizer, val_vec),
        collator, config.train, run_dir, config.seed, resume_from=resume_from, extra_callbacks=[callback],
        engine=engine,
    )

    def save(m: Any, model_dir: Path) -> None:
        m.config.use_cache = True  # off for training only
        save_run_model(model_dir, tokenizer, m, vocoder, speaker_means, info)

    def summary(m: Any) -> dict[str, Any]:
        return {
            "label": "speecht5", "data": data_summary,
            "model": {"base": config.model.name or "tiny SpeechT5", "vocoder": config.model.vocoder or "tiny HiFi-GAN",
                      "parameters": int(sum(p.numel() for p in m.parameters())), "vocab_size": len(tokenizer),
                      "added_tokens": len(chars), "reduction_factor": m.config.reduction_factor,
                      "speaker_encoder": encoder.name, "tiny_vocoder": tiny_voc},
        }

    def evaluate(m: Any) -> None:
        evaluate_loaded(run_dir, make(m.eval()), held, held_vec, encoder, config, tiny_voc)

    return finish_run(trainer, result, config, run_dir, save=save, summary=summary, evaluate=evaluate)
