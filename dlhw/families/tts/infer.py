"""Speech synthesis over every backend: batched decoding with per-item stop, long texts split, WAVs written.

:class:`Synthesizer` turns texts into 16 kHz mono waveforms. The decoding loop
(:func:`decode_batch`) is the same for every backend; a backend only provides the three graphs of
:mod:`dlhw.families.tts.graphs` (torch modules, or their ONNX files run by ONNX Runtime). Texts are
cleaned as in training, padded into one batch with an attention mask, and decoded together; an
utterance leaves the batch when its stop probability reaches the threshold (or its length limit),
so the others go on with a smaller batch. A text longer than the model's ``max_text_positions``
is split at sentence boundaries (then commas, then spaces), its parts synthesized and joined.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlhw.backends import Backend, open_export, open_session, read_export_meta
from dlhw.errors import ConfigError, DlhwError
from dlhw.families.tts.persian_speech import clean_for_speech

SAMPLE_RATE = 16000
ORT_META = "tts.json"


@dataclass
class Speech:
    """One synthesized utterance."""

    mel: np.ndarray
    """(T, 80) refined log-mel frames."""
    waveform: np.ndarray
    """(T * 256,) float32 samples at 16 kHz."""
    frames: int
    parts: int = 1
    """How many pieces a long text was split into."""


class TorchGraphs:
    """The three synthesis graphs as torch modules, in ``dtype``: float inputs (frames, dropout masks,
    speaker vectors, mel) are cast to it, float outputs come back as float32, as ONNX Runtime's do."""

    def __init__(self, model: Any, vocoder: Any, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        from dlhw.families.tts.graphs import DecoderStep, PostnetVocoder, TextEncoder

        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.encoder = TextEncoder(model).eval()
        self.stepper = DecoderStep(model).eval()
        self.post_module = PostnetVocoder(model, vocoder.to(device=self.device, dtype=dtype)).eval()

    def _in(self, x: Tensor) -> Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def encode(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.encoder(ids.to(self.device), mask.to(self.device))  # (B, S, H) in the model's dtype

    @torch.no_grad()
    def step(self, frame: Tensor, position: int, masks: Tensor, speaker: Tensor, memory: Tensor, memory_mask: Tensor,
             past: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
        out = self.stepper(self._in(frame), torch.tensor(position, device=self.device), self._in(masks),
                           self._in(speaker), memory, memory_mask.to(self.device), *past)
        return out[0].float(), out[1].float(), list(out[2:])  # (B, r, M), (B, r); the cache stays in dtype

    @torch.no_grad()
    def post(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        refined, wave = self.post_module(self._in(mel))
        return refined.float().cpu(), wave.float().cpu()

    def empty_past(self, batch: int) -> list[Tensor]:
        from dlhw.families.tts.graphs import empty_past

        return [p.to(self.dtype) for p in empty_past(self.model, batch, self.device)]


class OrtGraphs:
    """The same graphs from an export directory, run by ONNX Runtime."""

    def __init__(self, export_dir: Path, providers: list[Any] | None = None,
                 providers_for: Callable[[str], list[Any]] | None = None):
        """``providers`` from :func:`dlhw.backends.open_export` (default: the CPU), or ``providers_for(graph)``
        where each graph has its own (TensorRT: one shape profile per graph)."""
        self.meta = read_export_meta(export_dir, ORT_META)
        files = self.meta["files"]
        threads = torch.get_num_threads()  # as many as torch (OMP_NUM_THREADS) uses

        def chosen(graph: str) -> list[Any]:
            return (providers_for(graph) if providers_for else providers) or ["CPUExecutionProvider"]

        self.sessions = {k: open_session(export_dir / f, chosen(k), threads) for k, f in files.items()}
        self.past_names = [i.name for i in self.sessions["decoder_step"].get_inputs()][6:]

    def encode(self, ids: Tensor, mask: Tensor) -> Tensor:
        (memory,) = self.sessions["encoder"].run(None, {"input_ids": ids.numpy().astype(np.int64),
                                                        "attention_mask": mask.numpy().astype(np.int64)})
        return torch.from_numpy(memory)

    def step(self, frame: Tensor, position: int, masks: Tensor, speaker: Tensor, memory: Tensor, memory_mask: Tensor,
             past: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
        feed = {"frame": frame.numpy(), "position": np.array(position, dtype=np.int64), "prenet_masks": masks.numpy(),
                "speaker": speaker.numpy(), "memory": memory.numpy(), "memory_mask": memory_mask.numpy()}
        feed.update({name: p.numpy() for name, p in zip(self.past_names, past, strict=True)})
        out = self.sessions["decoder_step"].run(None, feed)
        return torch.from_numpy(out[0]), torch.from_numpy(out[1]), [torch.from_numpy(o) for o in out[2:]]

    def post(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        refined, wave = self.sessions["postnet_vocoder"].run(None, {"mel": mel.numpy()})
        return torch.from_numpy(refined), torch.from_numpy(wave)

    def empty_past(self, batch: int) -> list[Tensor]:
        m = self.meta
        return [torch.zeros(batch, m["heads"], 0, m["head_dim"]) for _ in range(2 * m["layers"])]


@dataclass
class DecodeSettings:
    reduction: int
    mels: int
    prenet_layers: int
    prenet_units: int
    prenet_dropout: float
    max_frames: int
    """The model's max_speech_positions."""
    threshold: float = 0.5
    max_length_ratio: float = 20.0
    seed: int = 0


def decode_batch(graphs: Any, ids: Tensor, mask: Tensor, speakers: Tensor, s: DecodeSettings,
                 record: list[tuple[Tensor, Tensor]] | None = None) -> list[Speech]:
    """Greedy autoregressive decoding of a padded batch, each item stopping on its own.

    ``record`` (parity checks) receives every step's ``(spectrum, stop)`` of the items still in the
    batch (both backends drop the same items at the same steps, or the stop-step check fails first).
    """
    memory = graphs.encode(ids, mask)  # (B, S, H)
    batch = ids.shape[0]
    lengths = mask.sum(1).tolist()
    limits = [max(1, min(int(n * s.max_length_ratio / s.reduction), s.max_frames // s.reduction - 1)) for n in lengths]
    generator = torch.Generator().manual_seed(s.seed)
    active = list(range(batch))
    frame = torch.zeros(batch, s.mels)
    past = graphs.empty_past(batch)
    memory_mask = mask.float()
    spk = speakers.float()
    frames: list[list[Tensor]] = [[] for _ in range(batch)]
    for t in range(max(limits)):
        masks = torch.bernoulli(torch.full((s.prenet_layers, s.prenet_units), s.prenet_dropout), generator=generator)
        spectrum, stop, past = graphs.step(frame, t, masks, spk, memory, memory_mask, past)
        spectrum, stop = spectrum.cpu(), stop.cpu()
        if record is not None:
            record.append((spectrum.clone(), stop.clone()))  # (B', r, M), (B', r)
        keep = []
        for row, item in enumerate(active):
            frames[item].append(spectrum[row])  # (r, M)
            if float(stop[row].sum()) < s.threshold and t + 1 < limits[item]:
                keep.append(row)
        if not keep:
            break
        if len(keep) < len(active):  # finished items leave the batch
            index = torch.tensor(keep)
            active = [active[r] for r in keep]
            memory, memory_mask, spk = memory[index.to(memory.device)], memory_mask[index], spk[index]
            past = [p[index.to(p.device)] for p in past]
            spectrum = spectrum[index]
        frame = spectrum[:, -1]  # (B', M): the last of the r frames feeds the next step
    out = []
    for item in range(batch):
        mel = torch.cat(frames[item])[None]  # (1, T, M)
        refined, wave = graphs.post(mel)
        out.append(Speech(refined[0].numpy(), wave[0].numpy().astype(np.float32), mel.shape[1]))
    return out


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def split_text(text: str, fits: Any) -> list[str]:
    """Pieces of ``text`` each ``fits(piece)``: at sentence ends, then commas, then spaces, then characters."""
    if fits(text):
        return [text]
    for pattern in (_SENTENCE_END, re.compile(r"(?<=,)\s*"), re.compile(r"\s+")):
        parts = [p for p in pattern.split(text) if p.strip()]
        if len(parts) > 1:
            out: list[str] = []
            current = ""
            for part in parts:
                joined = f"{current} {part}".strip() if current else part
                if fits(joined):
                    current = joined
                else:
                    if current:
                        out.append(current)
                    current = part
            out.append(current)
            return [q for piece in out for q in split_text(piece, fits)]
    half = len(text) // 2
    return split_text(text[:half], fits) + split_text(text[half:], fits)


class Synthesizer:
    """Texts -> :class:`Speech`, on one backend, with the run's tokenizer, speakers and limits."""

    def __init__(self, graphs: Any, tokenizer: Any, speakers: dict[str, list[float]], info: dict[str, Any],
                 settings: DecodeSettings, speaker_encoder: Any = None):
        self.graphs, self.tokenizer, self.speakers, self.info, self.settings = graphs, tokenizer, speakers, info, settings
        self.speaker_encoder = speaker_encoder
        self.max_tokens = int(info["max_text_positions"]) - 1  # room for </s>

    def default_speaker(self) -> str:
        return sorted(self.speakers)[0]

    def speaker_vector(self, speaker: str | None) -> np.ndarray:
        """A speaker id of the run, or a WAV file embedded with the run's x-vector provider."""
        speaker = speaker or self.default_speaker()
        if speaker in self.speakers:
            return np.asarray(self.speakers[speaker], dtype=np.float32)
        path = Path(speaker)
        if path.suffix.lower() in (".wav", ".mp3", ".flac", ".ogg") and path.is_file():
            from dlhw.families.tts.data import decode_audio

            if self.speaker_encoder is None:
                raise ConfigError("--speaker WAV_FILE: this synthesizer has no speaker encoder")
            return np.asarray(self.speaker_encoder.embed([decode_audio(path)])[0], dtype=np.float32)
        raise ConfigError(f"--speaker {speaker}: neither a speaker of this run ({', '.join(sorted(self.speakers)[:5])}"
                          f"{', ...' if len(self.speakers) > 5 else ''}) nor an audio file")

    def fits(self, text: str) -> bool:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids) <= self.max_tokens

    def prepare(self, text: str) -> list[str]:
        """The cleaned text's pieces; raises on a text that cleans to nothing."""
        cleaned = clean_for_speech(text, self.info.get("latin", "map"))
        if not cleaned:
            raise ValueError("the line normalizes to nothing speakable")
        return split_text(cleaned, self.fits)

    def synthesize_pieces(self, pieces: list[str], vectors: list[np.ndarray]) -> list[Speech]:
        enc = self.tokenizer(pieces, padding=True, return_tensors="pt")
        spk = torch.from_numpy(np.stack(vectors))
        return decode_batch(self.graphs, enc.input_ids, enc.attention_mask, spk, self.settings)

    def synthesize(self, texts: list[str], speakers: list[str | None] | None = None) -> list[Speech]:
        """One :class:`Speech` per text; all pieces of all texts decoded as one batch."""
        speakers = speakers or [None] * len(texts)
        pieces, owners, vectors = [], [], []
        for i, (text, speaker) in enumerate(zip(texts, speakers, strict=True)):
            vector = self.speaker_vector(speaker)
            for piece in self.prepare(text):
                pieces.append(piece)
                owners.append(i)
                vectors.append(vector)
        speech = self.synthesize_pieces(pieces, vectors)
        out = []
        for i in range(len(texts)):
            mine = [sp for sp, o in zip(speech, owners, strict=True) if o == i]
            out.append(Speech(np.concatenate([m.mel for m in mine]), np.concatenate([m.waveform for m in mine]),
                              sum(m.frames for m in mine), len(mine)))
        return out


def write_wav(path: Path, waveform: np.ndarray, sampling_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM mono WAV, written to a temporary name and renamed (a kill leaves no half file; the
    temporaries killed jobs left are removed when the next job opens the folder: :class:`SpeechPredictor`)."""
    import soundfile as sf

    from dlhw.core.atomic import temporary_name

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    sf.write(str(tmp), np.clip(waveform, -1.0, 1.0), sampling_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def settings_from(config: Any, info: dict[str, Any], threshold: float | None = None, seed: int | None = None) -> DecodeSettings:
    """Decoding settings from a SpeechT5 config (or an export's meta) and the run's eval section."""
    get = (lambda k: config[k]) if isinstance(config, dict) else (lambda k: getattr(config, k))
    return DecodeSettings(
        reduction=get("reduction_factor"), mels=get("num_mel_bins"), prenet_layers=get("speech_decoder_prenet_layers"),
        prenet_units=get("speech_decoder_prenet_units"), prenet_dropout=get("speech_decoder_prenet_dropout"),
        max_frames=get("max_speech_positions"), threshold=info.get("threshold", 0.5) if threshold is None else threshold,
        max_length_ratio=info.get("max_length_ratio", 20.0), seed=info.get("seed", 0) if seed is None else seed)


def load_synthesizer(path: str | Path, backend: Backend = "torch", device: str = "cpu",
                     dtype: torch.dtype = torch.float32) -> Synthesizer:
    """A synthesizer from a run directory (torch, in ``dtype``; or its export with onnxruntime) or an export
    directory."""
    from transformers import SpeechT5Tokenizer

    from dlhw.families.tts.config import TtsModelConfig
    from dlhw.families.tts.model import SPEAKERS_FILE, encoder_by_name, load_run_bundle

    path = Path(path)
    if backend == "torch":
        if not (path / "model" / "config.json").is_file():
            raise ConfigError(f"{path}: the torch backend needs a run directory (with model/); "
                              "for an export directory use --backend onnxruntime")
        bundle = load_run_bundle(path, device)
        graphs: Any = TorchGraphs(bundle.model, bundle.vocoder, device, dtype)
        tokenizer, speakers, info = bundle.tokenizer, bundle.speakers, bundle.info
        settings = settings_from(bundle.model.config, info)
    elif backend in ("onnxruntime", "tensorrt"):
        export = open_export(path, backend, device)
        export_dir = export.export_dir
        graphs = OrtGraphs(export_dir, providers_for=export.providers_for)
        tokenizer = SpeechT5Tokenizer.from_pretrained(export_dir)
        meta = read_export_meta(export_dir, SPEAKERS_FILE)
        speakers, info = meta["speakers"], meta["info"]
        settings = settings_from(graphs.meta["config"], info)
    else:
        raise DlhwError(f"--backend {backend}: the tts family runs on torch, onnxruntime or tensorrt")
    encoder_name = info.get("speaker_encoder")
    encoder = None
    if encoder_name == "mel-stats":
        encoder = encoder_by_name(encoder_name, TtsModelConfig())
    elif encoder_name:
        encoder = _LazyEncoder(encoder_name)
    return Synthesizer(graphs, tokenizer, speakers, info, settings, encoder)


class _LazyEncoder:
    """A Hub x-vector model loaded only when a WAV speaker is asked for."""

    def __init__(self, name: str):
        self.name = name
        self._encoder: Any = None

    def embed(self, waveforms: list[np.ndarray]) -> np.ndarray:
        from dlhw.families.tts.config import TtsModelConfig
        from dlhw.families.tts.model import encoder_by_name

        if self._encoder is None:
            self._encoder = encoder_by_name(self.name, TtsModelConfig())
        return np.asarray(self._encoder.embed(waveforms))


def wav_name(key: str) -> str:
    """``dir/sentences.txt:12`` -> ``sentences-00012-5d41402a.wav``: the file's stem and the line, and
    the first 8 hex digits of the SHA-1 of the file's path as keyed (as given on the command line),
    so that ``a/s.txt`` and ``b/s.txt``, or ``s.txt`` and ``s.jsonl``, never write the same WAV; the
    manifest maps each key to its WAV. The same input given the same way keeps its name on a rerun."""
    file, _, line = key.rpartition(":")
    tag = hashlib.sha1(file.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{Path(file).stem}-{int(line):05d}-{tag}.wav"


class SpeechPredictor:
    """``dlhw tts``'s predictor: ``{"text", "speaker"}`` -> a WAV written atomically into ``wav_dir`` and
    its record (``wav``, text, parts, frames, seconds, speaker)."""

    result_key = "wav"

    def __init__(self, synth: Synthesizer, wav_dir: Path, speaker: str | None = None):
        from dlhw.core.atomic import remove_stale_temporaries_in

        self.synth = synth
        self.wav_dir = wav_dir
        self.speaker = speaker
        self.seconds = 0.0
        remove_stale_temporaries_in(wav_dir)  # once per job, not per WAV: the folder grows a file per line

    def load(self, key: str, raw: Any) -> tuple[str, list[str], str | None]:
        return key, self.synth.prepare(raw["text"]), raw["speaker"] or self.speaker

    def predict(self, batch: list[tuple[str, list[str], str | None]]) -> list[dict[str, Any]]:
        pieces, owners, vectors = [], [], []
        for i, (_, parts, who) in enumerate(batch):  # every part of every line in one decoding batch
            vector = self.synth.speaker_vector(who)
            pieces += parts
            owners += [i] * len(parts)
            vectors += [vector] * len(parts)
        speech = self.synth.synthesize_pieces(pieces, vectors)
        records = []
        for i, (key, parts, who) in enumerate(batch):
            mine = [s for s, o in zip(speech, owners, strict=True) if o == i]
            wave = np.concatenate([s.waveform for s in mine])
            wav = self.wav_dir / wav_name(key)
            write_wav(wav, wave)
            self.seconds += len(wave) / SAMPLE_RATE
            records.append({"wav": str(wav), "text": " ".join(parts), "parts": len(parts),
                            "frames": sum(s.frames for s in mine), "seconds": round(len(wave) / SAMPLE_RATE, 3),
                            "speaker": who or self.synth.default_speaker()})
        return records

    def throughput(self, seconds: float) -> str | None:
        return (f"{self.seconds:.1f} s of audio in {seconds:.1f} s "
                f"({self.seconds / max(seconds, 1e-9):.2f} s of audio per second)")


def open_predictor(path: str, backend: str = "torch", device: str = "auto", wav_dir: str | Path = ".",
                   speaker: str | None = None, dtype: str = "auto") -> SpeechPredictor:
    """The TTS family's batch predictor for a run (torch, in ``dtype``: see
    :func:`~dlhw.core.devices.inference_dtype`) or an export (onnxruntime)."""
    from dlhw.core.devices import inference_dtype, resolve_device

    # the torch loader takes cpu/cuda; auto means CUDA when torch sees a GPU
    dev = resolve_device(device, "--device")
    weights = inference_dtype(dtype, dev) if backend == "torch" else torch.float32
    return SpeechPredictor(load_synthesizer(path, backend, str(dev), weights), Path(wav_dir),  # type: ignore[arg-type]
                           speaker)
