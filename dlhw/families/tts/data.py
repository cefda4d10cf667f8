"""Speech data for the TTS family: Common Voice from its download layout, the embedded corpus, speakers.

Common Voice's Hub copies were withdrawn; it is downloaded from its own site as a locale folder
holding ``clips/*.mp3`` and ``train.tsv`` / ``dev.tsv`` / ``test.tsv`` / ``validated.tsv`` with the
columns ``client_id, path, sentence, up_votes, down_votes, age, gender, accents`` (``accent`` in
older releases) ``, variant, locale, segment``. :func:`load_commonvoice` merges the released splits
(``data.tsv_files``), decodes each MP3 with soundfile (libsndfile reads MP3; no torchaudio),
mixes it to mono and resamples it to 16 kHz with soxr. Empty, undecodable, too-short and
too-long clips are counted per reason and skipped; so are sentences that clean to nothing.
Speakers outside ``[min_clips_per_speaker, max_clips_per_speaker]`` are dropped (the seed's
10-1,000). The merged clips are then split 90/10 with the run's seed, clip by clip: a speaker
may have clips on both sides (the held-out clips are new sentences and recordings, not new voices).
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlhw.errors import DataError
from dlhw.families.tts.config import TtsDataConfig
from dlhw.families.tts.persian_speech import clean_for_speech

CV_COLUMNS = ("client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender")
"""Columns every Common Voice release has (``accents``/``accent``, ``variant``, ``locale``,
``segment`` vary by release and are not needed)."""


@dataclass
class Utterance:
    """One clip: who said what, and where its audio is."""

    key: str
    """Unique id (the clip's file name, or ``synthetic-N``)."""
    speaker_id: str
    """Common Voice ``client_id`` (or a synthetic voice)."""
    text: str
    """The sentence after :func:`clean_for_speech`."""
    raw_text: str
    """The sentence as released."""
    path: str | None = None
    """The audio file (Common Voice)."""
    audio: np.ndarray | None = None
    """The 16 kHz mono waveform, when it is held in memory (embedded corpus, decoded clips)."""
    seconds: float = 0.0

    def waveform(self, sampling_rate: int = 16000) -> np.ndarray:
        if self.audio is not None:
            return self.audio
        assert self.path is not None
        return decode_audio(Path(self.path), sampling_rate)


@dataclass
class SpeechSplits:
    train: list[Utterance]
    val: list[Utterance]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason -> number of clips skipped for it."""
    clips_per_speaker: dict[str, int] = field(default_factory=dict)
    """Clips per speaker before the speaker filter (for the plot)."""
    speakers_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    """Problems that stop training, reported instead of raised (``strict=False``: ``data inspect``)."""

    def all(self) -> list[Utterance]:
        return self.train + self.val

    def summary(self) -> dict[str, Any]:
        speakers = {u.speaker_id for u in self.all()}
        return {"source": self.source, "train": len(self.train), "val": len(self.val),
                "speakers": len(speakers), "speakers_dropped": self.speakers_dropped,
                "speakers_crossing_split": len({u.speaker_id for u in self.train} & {u.speaker_id for u in self.val}),
                "skipped": dict(self.skipped), "hours": round(sum(u.seconds for u in self.all()) / 3600, 3)}


class ClipError(ValueError):
    """A clip that cannot be used; ``reason`` is the counted category."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def to_mono_16k(data: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    """(T,) or (T, C) float audio at ``rate`` -> (T',) float32 mono at ``target``."""
    import soxr

    mono = data.mean(axis=1) if data.ndim == 2 else data  # (T,)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate != target:
        mono = soxr.resample(mono, rate, target).astype(np.float32)
    return mono


def decode_audio(path: Path, target: int = 16000) -> np.ndarray:
    """Decode any file libsndfile reads (MP3, WAV, FLAC, OGG) to mono float32 at ``target`` Hz."""
    import soundfile as sf

    if not path.is_file():
        raise ClipError("missing", str(path))
    if path.stat().st_size == 0:
        raise ClipError("empty", f"{path} has 0 bytes")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as err:  # noqa: BLE001 - libsndfile's errors are all "cannot decode"
        raise ClipError("undecodable", f"{path}: {err}") from None
    if data.size == 0:
        raise ClipError("empty", f"{path} decodes to no samples")
    return to_mono_16k(data, rate, target)


def read_cv_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a Common Voice TSV (no quoting: sentences hold quotes); checks the columns."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in CV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}:1: not a Common Voice TSV: missing column(s) {', '.join(missing)}; "
                            f"expected {', '.join(CV_COLUMNS)}, accents, variant, locale, segment")
        return list(reader)


def _keep_speakers(utts: list[Utterance], cfg: TtsDataConfig) -> tuple[list[Utterance], dict[str, int], int]:
    counts = Counter(u.speaker_id for u in utts)
    keep = {s for s, n in counts.items() if cfg.min_clips_per_speaker <= n <= cfg.max_clips_per_speaker}
    return [u for u in utts if u.speaker_id in keep], dict(counts), len(counts) - len(keep)


def _split(utts: list[Utterance], cfg: TtsDataConfig, seed: int) -> tuple[list[Utterance], list[Utterance]]:
    order = sorted(utts, key=lambda u: u.key)
    random.Random(seed).shuffle(order)
    if cfg.max_clips is not None:
        order = order[: cfg.max_clips]
    n_val = max(1, round(len(order) * cfg.val_fraction))
    return order[n_val:], order[:n_val]


def load_commonvoice(cfg: TtsDataConfig, seed: int, decode: bool = True,
                     progress: Callable[[Any], Any] | None = None, strict: bool = True) -> SpeechSplits:
    """The merged, filtered and split clips of a Common Voice locale folder (see the module docstring).

    No clip left after filtering is an error, or with ``strict=False`` empty splits and a warning."""
    root = Path(cfg.data_dir or "")
    if not (root / "clips").is_dir():
        raise DataError(f"{root}: not a Common Voice locale folder (no clips/); point --data-dir at the folder "
                        "holding clips/ and train.tsv, or train offline with --preset tiny")
    rows: dict[str, dict[str, str]] = {}
    for name in cfg.tsv_files:
        tsv = root / name
        if not tsv.is_file():
            raise DataError(f"{tsv}: no such file; data.tsv_files lists the released splits to merge")
        for row in read_cv_tsv(tsv):
            rows.setdefault(row["path"], row)  # a clip in two TSVs counts once
    skipped: Counter[str] = Counter()
    utts: list[Utterance] = []
    items = list(rows.values())
    for row in progress(items) if progress else items:
        text = clean_for_speech(row["sentence"] or "", cfg.latin)
        if not text:
            skipped["empty sentence after cleaning"] += 1
            continue
        path = root / "clips" / row["path"]
        try:
            audio = decode_audio(path, cfg.sampling_rate)
        except ClipError as err:
            skipped[err.reason] += 1
            continue
        seconds = len(audio) / cfg.sampling_rate
        if seconds < cfg.min_seconds:
            skipped[f"shorter than {cfg.min_seconds:g} s"] += 1
            continue
        if seconds > cfg.max_seconds:
            skipped[f"longer than {cfg.max_seconds:g} s"] += 1
            continue
        utts.append(Utterance(row["path"], row["client_id"], text, row["sentence"], str(path),
                              audio if decode else None, seconds))
    kept, counts, dropped = _keep_speakers(utts, cfg)
    if not kept:
        reasons = ", ".join(f"{reason} {n}" for reason, n in skipped.items()) or "none"
        message = (f"{root}: no clip left after filtering (clips skipped: {reasons}; {dropped} speakers outside "
                   f"{cfg.min_clips_per_speaker}-{cfg.max_clips_per_speaker} clips); widen the range with --set "
                   "data.min_clips_per_speaker=N / data.max_clips_per_speaker=N")
        if strict:
            raise DataError(message)
        return SpeechSplits([], [], f"commonvoice:{root}", dict(skipped), counts, dropped, [message])
    train, val = _split(kept, cfg, seed)
    return SpeechSplits(train, val, f"commonvoice:{root}", dict(skipped), counts, dropped)


def load_embedded(cfg: TtsDataConfig, seed: int) -> SpeechSplits:
    """The synthetic corpus (:mod:`dlhw.families.tts.speech_tasks`), through the same filters and split."""
    from dlhw.families.tts.speech_tasks import make_corpus

    utts = []
    for i, u in enumerate(make_corpus(cfg.embedded_utterances, cfg.embedded_speakers, seed)):
        utts.append(Utterance(f"synthetic-{i:05d}", u.speaker_id, clean_for_speech(u.text, cfg.latin), u.text,
                              audio=u.audio, seconds=len(u.audio) / cfg.sampling_rate))
    kept, counts, dropped = _keep_speakers(utts, cfg)
    train, val = _split(kept, cfg, seed)
    return SpeechSplits(train, val, "embedded", {}, counts, dropped)


def load_hub(cfg: TtsDataConfig, seed: int) -> SpeechSplits:
    """A Hub mirror with Common Voice's columns and an ``audio`` column (decoded arrays)."""
    from datasets import load_dataset

    try:
        ds = load_dataset(cfg.hf_dataset, cfg.hf_config, split="+".join(
            Path(n).stem.replace("dev", "validation") for n in cfg.tsv_files))
    except Exception as err:  # noqa: BLE001 - offline or withdrawn: one actionable line
        raise DataError(f"cannot load {cfg.hf_dataset} ({cfg.hf_config}) from the Hub: {type(err).__name__}. Common "
                        "Voice's Hub copies were withdrawn: download the locale folder and pass --data-dir, or "
                        "train offline with --preset tiny") from None
    utts, skipped = [], Counter[str]()
    for i, row in enumerate(ds):
        text = clean_for_speech(row["sentence"] or "", cfg.latin)
        audio = to_mono_16k(np.asarray(row["audio"]["array"]), row["audio"]["sampling_rate"], cfg.sampling_rate)
        seconds = len(audio) / cfg.sampling_rate
        if not text or not cfg.min_seconds <= seconds <= cfg.max_seconds:
            skipped["empty sentence or out of the length range"] += 1
            continue
        utts.append(Utterance(str(row.get("path", i)), row["client_id"], text, row["sentence"], audio=audio,
                              seconds=seconds))
    kept, counts, dropped = _keep_speakers(utts, cfg)
    train, val = _split(kept, cfg, seed)
    return SpeechSplits(train, val, f"hub:{cfg.hf_dataset}", dict(skipped), counts, dropped)


def load_speech(cfg: TtsDataConfig, seed: int, strict: bool = True) -> SpeechSplits:
    """The clips ``cfg`` names; ``strict=False`` reports a Common Voice folder filtered empty as a
    warning instead of raising (``dlhw data inspect``)."""
    if cfg.source == "embedded":
        return load_embedded(cfg, seed)
    if cfg.source == "hub":
        return load_hub(cfg, seed)
    from tqdm.auto import tqdm

    # the waveforms are decoded again when a clip is featurized: a full locale does not fit in memory
    return load_commonvoice(cfg, seed, decode=False, progress=lambda items: tqdm(items, desc="checking clips",
                                                                                 unit="clip"), strict=strict)
