"""Config schema of the text-to-speech family (SpeechT5 fine-tuned for Persian)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dlhw.config.base import RunConfig
from dlhw.core.family import HubAsset
from dlhw.errors import ConfigError


@dataclass
class TtsDataConfig:
    """Which clips, how they are decoded, filtered and split."""

    source: typing.Literal["commonvoice", "hub", "embedded"] = "commonvoice"
    """commonvoice = the locale folder of a Common Voice download at data_dir (clips/*.mp3 + TSVs);
    hub = a Hub mirror (hf_dataset) with the same columns; embedded = the synthetic corpus."""
    data_dir: str | None = None
    """source=commonvoice: the locale folder (e.g. cv-corpus-13.0-2023-03-09/fa)."""
    hf_dataset: str = "mozilla-foundation/common_voice_13_0"
    """source=hub: dataset id of a mirror holding Common Voice's columns and an audio column."""
    hf_config: str = "fa"
    """source=hub: the dataset config (the locale)."""
    tsv_files: list[str] = field(default_factory=lambda: ["train.tsv", "dev.tsv", "test.tsv"])
    """Released splits merged before the seeded split (validated.tsv holds them all and more)."""
    sampling_rate: int = 16000
    """Clips are resampled to this rate, mono."""
    min_seconds: float = 0.5
    """Shorter clips are skipped (counted)."""
    max_seconds: float = 15.0
    """Longer clips are skipped (counted); speech over the model's max_speech_positions is too."""
    min_clips_per_speaker: int = 10
    """Speakers with fewer clips are dropped."""
    max_clips_per_speaker: int = 1000
    """Speakers with more clips are dropped (the seed's 10-1,000 range)."""
    val_fraction: float = 0.1
    """Seeded clip-level split of the merged clips: a speaker may have clips on both sides."""
    max_clips: int | None = None
    """Use at most this many clips after filtering (null = all)."""
    latin: typing.Literal["map", "drop"] = "map"
    """Latin letters in sentences: written with Persian letters, or dropped."""
    embedded_utterances: int = 400
    """source=embedded: sentences rendered by the synthetic voices."""
    embedded_speakers: int = 4
    """source=embedded: number of synthetic voices."""

    def __post_init__(self) -> None:
        if self.source == "commonvoice" and not self.data_dir:
            raise ConfigError("data.data_dir: required when data.source is commonvoice (or pass --data-dir)")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"data.val_fraction: must be in (0, 1), got {self.val_fraction}")
        if self.min_clips_per_speaker > self.max_clips_per_speaker:
            raise ConfigError("data.min_clips_per_speaker: must not exceed data.max_clips_per_speaker")


@dataclass
class TinySpeechT5Config:
    """Sizes of the tiny SpeechT5 and HiFi-GAN built from a config (used when model.name is null)."""

    hidden_size: int = 64
    """Width of encoder and decoder."""
    layers: int = 2
    """Encoder layers and decoder layers (each)."""
    heads: int = 2
    """Attention heads."""
    ffn_dim: int = 128
    """Feed-forward width."""
    prenet_units: int = 64
    """Speech decoder prenet width."""
    postnet_units: int = 64
    """Speech decoder postnet channels."""
    postnet_layers: int = 2
    """Speech decoder postnet convolutions."""
    vocoder_channels: int = 32
    """HiFi-GAN's first upsampling channels (random weights: the audio is not speech)."""
    base_vocabulary: str = "abcdefghijklmnopqrstuvwxyz ,.?!'"
    """Characters of the tiny base tokenizer (English, like SpeechT5's); Persian comes from the extension."""


@dataclass
class TtsModelConfig:
    """The acoustic model, its vocoder and the speaker embeddings."""

    name: str | None = "microsoft/speecht5_tts"
    """Hub id or local path of SpeechT5; null = the tiny model below."""
    vocoder: str | None = "microsoft/speecht5_hifigan"
    """Hub id or local path of the HiFi-GAN vocoder; null = the tiny random vocoder."""
    tiny: TinySpeechT5Config = field(default_factory=TinySpeechT5Config)
    """Sizes of the tiny model."""
    speaker_encoder: typing.Literal["auto", "speechbrain", "wavlm", "mel-stats"] = "auto"
    """x-vector provider: auto = speechbrain's spkrec-xvect-voxceleb when speechbrain is installed,
    else WavLMForXVector; mel-stats = the offline statistics-pooling embedding of the tiny preset."""
    speechbrain_model: str = "speechbrain/spkrec-xvect-voxceleb"
    """speechbrain x-vector model (needs the optional speechbrain extra and torchaudio)."""
    wavlm_model: str = "microsoft/wavlm-base-plus-sv"
    """transformers WavLMForXVector model."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass."""
    reduction_factor: int | None = None
    """Frames per decoder step; null = the model's own (2 for SpeechT5)."""


@dataclass
class TtsTrainExtras:
    """Training settings the shared train section does not have."""

    warmup_steps: int = 0
    """Linear warmup steps (the seed: 500); overrides train.warmup_ratio when > 0."""


@dataclass
class TtsEvalConfig:
    """Synthesis and scoring on held-out clips."""

    examples: int = 40
    """Held-out clips synthesized and scored."""
    batch_size: int = 8
    """Utterances synthesized together."""
    samples: int = 3
    """WAVs and spectrogram plots written per evaluation."""
    threshold: float = 0.5
    """Stop when the stop probability reaches this."""
    max_length_ratio: float = 20.0
    """At most this many decoder steps per input token (times the reduction factor in frames)."""
    asr_model: str | None = None
    """Optional ASR model id for the character error rate of the synthesized audio (skipped offline)."""
    seed: int = 0
    """Seed of the prenet dropout masks drawn at synthesis (SpeechT5 keeps that dropout on)."""


@dataclass
class TtsConfig(RunConfig):
    """A SpeechT5 fine-tuning run (recipe tts)."""

    data: TtsDataConfig = field(default_factory=lambda: TtsDataConfig(data_dir="data/commonvoice/fa"))
    """Clips, text and speakers."""
    model: TtsModelConfig = field(default_factory=TtsModelConfig)
    """SpeechT5, vocoder and speaker embeddings."""
    trainer: TtsTrainExtras = field(default_factory=TtsTrainExtras)
    """Extra training settings."""
    eval: TtsEvalConfig = field(default_factory=TtsEvalConfig)
    """Evaluation."""


def hub_assets(config: TtsConfig) -> list[HubAsset]:
    """SpeechT5, the vocoder, the x-vector model (speechbrain's or WavLM, as ``model.speaker_encoder`` picks),
    the optional ASR model and, for ``data.source=hub``, the Common Voice mirror."""
    import importlib.util

    from dlhw.core.download import hub_dataset, hub_model

    model = config.model
    encoder = model.speaker_encoder
    if encoder == "auto":
        encoder = "speechbrain" if importlib.util.find_spec("speechbrain") else "wavlm"
    xvector = {"speechbrain": hub_model(model.speechbrain_model, "model.speechbrain_model"),
               "wavlm": hub_model(model.wavlm_model, "model.wavlm_model")}.get(encoder, [])
    data = config.data
    return (hub_model(model.name, "model.name") + hub_model(model.vocoder, "model.vocoder") + xvector
            + hub_model(config.eval.asr_model, "eval.asr_model")
            + (hub_dataset(data.hf_dataset, "data.hf_dataset", data.hf_config) if data.source == "hub" else []))
