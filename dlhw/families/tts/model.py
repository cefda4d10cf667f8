"""SpeechT5 + HiFi-GAN for the TTS family: loading, tiny builders, x-vector providers, saving a run.

Full preset: ``microsoft/speecht5_tts`` and ``microsoft/speecht5_hifigan`` from the Hub (or local
folders). Tiny preset: a SpeechT5 and a HiFi-GAN built from small configs with random weights, and
a character sentencepiece tokenizer over English letters trained on the fly (standing in for
SpeechT5's English character vocabulary, which the Persian extension then grows).

Speaker embeddings are 512-d, L2-normalized x-vectors from one of three providers:
``speechbrain`` (``speechbrain/spkrec-xvect-voxceleb``, the seed's; the optional ``speechbrain``
extra, which needs torchaudio and so an older torch), ``wavlm`` (transformers'
``WavLMForXVector``, ``microsoft/wavlm-base-plus-sv``) and ``mel-stats`` (offline, the tiny
preset's: band-to-band slopes of the mean and
standard deviation of the voiced log-mel frames, projected to 512-d by a fixed seeded
matrix -- statistics pooling without a trained network, enough to tell synthetic voices apart).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dlhw.core.atomic import write_json_atomic
from dlhw.core.weights import check_weights
from dlhw.errors import DlhwError
from dlhw.families.tts.config import TinySpeechT5Config, TtsModelConfig

SAMPLE_RATE = 16000
HOP = 256
EMBED_DIM = 512
SPEAKERS_FILE = "speakers.json"
VOCODER_DIR = "vocoder"


def offline_error(what: str, ids: list[str]) -> DlhwError:
    return DlhwError(
        f"cannot load {what} {', '.join(ids)} (no network or not in the Hugging Face cache). Download them "
        "once, or set model.name / model.vocoder to local folders; point --data-dir at a Common Voice "
        "locale folder (clips/ + train.tsv); or train offline with --preset tiny"
    )


def tiny_tokenizer(tiny: TinySpeechT5Config, out_dir: Path) -> Any:
    """A SpeechT5 character tokenizer over ``tiny.base_vocabulary`` (ids as SpeechT5's: <s> 0, <pad> 1,
    </s> 2, <unk> 3), trained into ``out_dir``."""
    import sentencepiece as spm
    from transformers import SpeechT5Tokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    chars = tiny.base_vocabulary
    lines = [" ".join(chars[i:] + chars[:i]) for i in range(len(chars))]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(out_dir / "spm_char"),
                                   model_type="char", vocab_size=len(set(chars)) + 5, bos_id=0, pad_id=1, eos_id=2,
                                   unk_id=3, character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    return SpeechT5Tokenizer(str(out_dir / "spm_char.model"))


def tiny_speecht5(tiny: TinySpeechT5Config, vocab_size: int, reduction_factor: int = 2) -> Any:
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech

    config = SpeechT5Config(
        vocab_size=vocab_size, hidden_size=tiny.hidden_size, encoder_layers=tiny.layers, decoder_layers=tiny.layers,
        encoder_attention_heads=tiny.heads, decoder_attention_heads=tiny.heads, encoder_ffn_dim=tiny.ffn_dim,
        decoder_ffn_dim=tiny.ffn_dim, speech_decoder_prenet_units=tiny.prenet_units,
        speech_decoder_postnet_units=tiny.postnet_units, speech_decoder_postnet_layers=tiny.postnet_layers,
        max_speech_positions=1000, max_text_positions=300, reduction_factor=reduction_factor,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0, mask_time_prob=0.0, speaker_embedding_dim=EMBED_DIM,
    )
    return SpeechT5ForTextToSpeech(config)


def tiny_vocoder(tiny: TinySpeechT5Config) -> Any:
    """A HiFi-GAN with random weights: the real vocoder path (256x upsampling), but its audio is not speech."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    config = SpeechT5HifiGanConfig(upsample_initial_channel=tiny.vocoder_channels, upsample_rates=[4, 4, 4, 4],
                                   upsample_kernel_sizes=[8, 8, 8, 8], resblock_kernel_sizes=[3],
                                   resblock_dilation_sizes=[[1, 3]], normalize_before=False,
                                   initializer_range=0.1)  # 0.01 (the default) gives near-silent output
    return SpeechT5HifiGan(config).eval()


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection within ``timeout`` seconds."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def require_models(ids: list[str]) -> None:
    """Fail within seconds, naming ``ids``, when a model is neither local, nor cached, nor downloadable."""
    from transformers.utils import cached_file

    missing = []
    for model_id in ids:
        if Path(model_id).is_dir():
            continue
        try:
            cached_file(model_id, "config.json", local_files_only=True)
        except OSError:
            missing.append(model_id)
    if missing and not hub_reachable():
        raise offline_error("the models", ids)


def hub_ids(cfg: TtsModelConfig) -> list[str]:
    """The Hub models a run with ``cfg`` needs: SpeechT5, the vocoder, and the WavLM x-vector model."""
    ids = [i for i in (cfg.name, cfg.vocoder) if i]
    wavlm = cfg.speaker_encoder == "wavlm" or (cfg.speaker_encoder == "auto" and not importlib.util.find_spec("speechbrain"))
    return ids + ([cfg.wavlm_model] if wavlm else [])


def load_pretrained(cfg: TtsModelConfig) -> tuple[Any, Any, Any]:
    """``(tokenizer, model, vocoder)`` of the full preset; fails within seconds offline, naming the ids."""
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer

    assert cfg.name is not None
    ids = [cfg.name, *([cfg.vocoder] if cfg.vocoder else [])]
    require_models(ids)
    try:
        tokenizer = SpeechT5Tokenizer.from_pretrained(cfg.name)
        model = SpeechT5ForTextToSpeech.from_pretrained(cfg.name)
        vocoder = SpeechT5HifiGan.from_pretrained(cfg.vocoder).eval() if cfg.vocoder else tiny_vocoder(cfg.tiny)
    except (OSError, ValueError):
        raise offline_error("the models", ids) from None
    return tokenizer, model, vocoder


# ----------------------------------------------------------------------------------------- x-vectors


class SpeakerEncoder(Protocol):
    name: str

    def embed(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """16 kHz mono waveforms -> (N, 512) L2-normalized embeddings."""
        ...


def _l2(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)).astype(np.float32)


class MelStatsXVector:
    """Statistics pooling of log-mel bands, projected to 512-d by a fixed seeded matrix (offline)."""

    name = "mel-stats"

    def __init__(self) -> None:
        from transformers import SpeechT5FeatureExtractor

        self.features = SpeechT5FeatureExtractor()
        self.projection = np.random.default_rng(1234).standard_normal((158, EMBED_DIM)) / np.sqrt(158)

    def embed(self, waveforms: list[np.ndarray]) -> np.ndarray:
        return self.embed_mels([self.features(audio_target=w, sampling_rate=SAMPLE_RATE).input_values[0]
                                for w in waveforms])

    def embed_mels(self, mels: list[np.ndarray]) -> np.ndarray:
        """The same embedding from (T, 80) log10-mel frames (a synthesized spectrogram, say)."""
        rows = []
        for mel in mels:
            mel = np.asarray(mel)
            voiced = mel[mel.mean(axis=1) > mel.mean(axis=1).min() + 1.0]  # drop silent frames
            voiced = voiced if len(voiced) else mel
            # band-to-band slopes of the mean and spread: the spectral envelope (timbre) and the
            # harmonic ripple (pitch), without the loudness every clip shares
            stats = np.concatenate([np.diff(voiced.mean(0)), np.diff(voiced.std(0))])  # (158,)
            rows.append(stats - stats.mean())
        return _l2(np.stack(rows) @ self.projection)  # (N, 512)


class WavLMXVector:
    name = "wavlm"

    def __init__(self, model_id: str):
        from transformers import AutoFeatureExtractor, WavLMForXVector

        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(model_id)
            self.model = WavLMForXVector.from_pretrained(model_id).eval()
        except OSError:
            raise offline_error("the speaker encoder", [model_id]) from None

    @torch.no_grad()
    def embed(self, waveforms: list[np.ndarray]) -> np.ndarray:
        out = []
        for wave in waveforms:
            inputs = self.extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            out.append(self.model(**inputs).embeddings[0].numpy())
        return _l2(np.stack(out))


class SpeechbrainXVector:
    name = "speechbrain"

    def __init__(self, model_id: str):
        from speechbrain.inference.speaker import (
            EncoderClassifier,  # optional extra (needs torchaudio)
        )

        self.model = EncoderClassifier.from_hparams(source=model_id)

    @torch.no_grad()
    def embed(self, waveforms: list[np.ndarray]) -> np.ndarray:
        out = [self.model.encode_batch(torch.from_numpy(w)[None]).squeeze().numpy() for w in waveforms]
        return _l2(np.stack(out))


def speaker_encoder(cfg: TtsModelConfig) -> SpeakerEncoder:
    """The configured x-vector provider (``auto``: speechbrain when installed, else WavLM)."""
    kind = cfg.speaker_encoder
    if kind == "auto":
        kind = "speechbrain" if importlib.util.find_spec("speechbrain") else "wavlm"
    if kind == "mel-stats":
        return MelStatsXVector()
    if kind == "speechbrain":
        if importlib.util.find_spec("speechbrain") is None:
            raise DlhwError("model.speaker_encoder=speechbrain: speechbrain is not installed (pip install "
                            "'dlhw[speechbrain]'; it needs torchaudio, which pins an older torch); use wavlm")
        return SpeechbrainXVector(cfg.speechbrain_model)
    return WavLMXVector(cfg.wavlm_model)


def encoder_by_name(name: str, cfg: TtsModelConfig) -> SpeakerEncoder:
    """The provider a run recorded (so synthesis embeds a WAV speaker the way training did)."""
    return speaker_encoder(TtsModelConfig(**{**cfg.__dict__, "speaker_encoder": name}))


def clip_xvectors(encoder: SpeakerEncoder, clips: list[Any], source: str) -> list[np.ndarray]:
    """One x-vector per clip, computed once and cached under ``$DLHW_CACHE_DIR/tts-xvectors``
    (keyed by provider, data source and clip key; a clip already cached is not embedded again)."""
    from dlhw.core.cache import asset_key, cache_dir

    folder = cache_dir() / "tts-xvectors" / asset_key({"provider": encoder.name, "source": source})
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    todo = []
    for clip in clips:
        path = folder / f"{asset_key({'key': clip.key, 'seconds': round(clip.seconds, 4)})}.npy"
        if path.is_file():
            out[clip.key] = np.load(path)
        else:
            todo.append((clip, path))
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(todo), 32), desc=f"x-vectors ({encoder.name})", unit="batch",
                      disable=len(todo) <= 32):
        chunk = todo[start:start + 32]
        vectors = encoder.embed([c.waveform() for c, _ in chunk])
        for (clip, path), vector in zip(chunk, vectors, strict=True):
            np.save(path, vector)
            out[clip.key] = vector
    return [out[c.key] for c in clips]


# ----------------------------------------------------------------------------------------- run files


@dataclass
class TtsBundle:
    """What synthesis needs from a run."""

    tokenizer: Any
    model: Any
    vocoder: Any
    speakers: dict[str, list[float]]
    """Speaker id -> mean x-vector of its training clips."""
    info: dict[str, Any]
    """``speaker_encoder``, ``latin``, ``max_text_positions`` ... (model/speakers.json)."""


def save_run_model(model_dir: Path, tokenizer: Any, model: Any, vocoder: Any, speakers: dict[str, list[float]],
                   info: dict[str, Any]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    vocoder.save_pretrained(model_dir / VOCODER_DIR)
    write_json_atomic(model_dir / SPEAKERS_FILE, {"info": info, "speakers": speakers}, indent=None)


def load_run_bundle(run_dir: Path, device: str | torch.device = "cpu") -> TtsBundle:
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer

    model_dir = Path(run_dir) / "model"
    if not (model_dir / "config.json").is_file():
        raise DlhwError(f"{run_dir}: no model/ (not a finished tts run)")
    meta = json.loads((model_dir / SPEAKERS_FILE).read_text(encoding="utf-8"))
    check_weights([model_dir])  # the model's and the vocoder's: a damaged file named in one line
    model: Any = SpeechT5ForTextToSpeech.from_pretrained(model_dir)
    vocoder: Any = SpeechT5HifiGan.from_pretrained(model_dir / VOCODER_DIR)
    model, vocoder = model.to(device).eval(), vocoder.to(device).eval()
    return TtsBundle(SpeechT5Tokenizer.from_pretrained(model_dir), model, vocoder, meta["speakers"], meta["info"])


def load_run_model(run_dir: Path) -> tuple[Any, str]:
    """``dlhw model summary``: the run's SpeechT5."""
    bundle = load_run_bundle(run_dir)
    return bundle.model, f"SpeechT5 ({bundle.info.get('base', 'tiny')})"
