"""TTS runs to ONNX: text encoder, decoder step with past key/values, postnet + vocoder.

optimum-onnx has a SpeechT5 ``text-to-audio`` export, but it does not fit dlhw's synthesis: its
decoder graph takes batch size 1 only (it reads ``last_hidden_state[0, -1]``), its encoder ignores
padding (the attention mask is all ones), and the prenet dropout that SpeechT5 keeps on at
inference becomes a ``RandomUniform`` node inside the graph, so no two runs -- and no ONNX run and
torch run -- give the same frames. dlhw therefore exports its own three graphs
(:mod:`dlhw.families.tts.graphs`, the modules the torch backend runs): batched, masked, the dropout
masks an input drawn from a seeded generator, the self-attention past as explicit tensors.

The check decodes held-out-like texts of several lengths as one padded batch with torch and with
ONNX Runtime: every step's mel frames and stop probabilities must agree within the tolerance, every
utterance must stop at the same step, and the waveforms must agree within ``10 * atol``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.core.family import HfExport
from dlhw.core.runs import RunFiles, run_config_dict
from dlhw.errors import DlhwError
from dlhw.families.tts.graphs import DecoderStep, PostnetVocoder, TextEncoder, empty_past
from dlhw.families.tts.infer import (
    ORT_META,
    OrtGraphs,
    Speech,
    Synthesizer,
    TorchGraphs,
    decode_batch,
    load_synthesizer,
)
from dlhw.families.tts.model import SPEAKERS_FILE

CHECK_TEXTS = ("سلام", "این کتاب روی میز است.", "من ۲۳ سیب و دو انار دارم، تو چند تا داری؟", "باران می‌بارد")


@dataclass
class TtsExport:
    run_dir: Path
    synth: Synthesizer


def load_for_export(run_dir: Path) -> TtsExport:
    return TtsExport(run_dir, load_synthesizer(run_dir, "torch", "cpu"))


def _past_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def export_tts(job: TtsExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Write encoder.onnx, decoder_step.onnx, postnet_vocoder.onnx, the tokenizer and tts.json."""
    graphs: TorchGraphs = job.synth.graphs
    model = graphs.model.cpu().eval()
    config = model.config
    layers = config.decoder_layers
    ids = torch.tensor([[5, 6, 7, 8, 2], [5, 6, 2, 1, 1]])  # (2, 5), second row padded
    mask = (ids != 1).long()
    past_in, past_out = _past_names(layers, "past"), _past_names(layers, "present")
    with torch.no_grad():
        memory = TextEncoder(model)(ids, mask)  # (2, 5, H)
        torch.onnx.export(TextEncoder(model).eval(), (ids, mask), str(out_dir / "encoder.onnx"), dynamo=False,
                          opset_version=opset, input_names=["input_ids", "attention_mask"], output_names=["memory"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                        "memory": {0: "batch", 1: "tokens"}})
        past = [p.new_zeros(2, p.shape[1], 3, p.shape[3]) for p in empty_past(model, 2)]  # (2, nh, 3, hd)
        step_inputs = (torch.zeros(2, config.num_mel_bins), torch.tensor(3), torch.ones(config.speech_decoder_prenet_layers,
                       config.speech_decoder_prenet_units), torch.randn(2, 512), memory, mask.float(), *past)
        axes: dict[str, dict[int, str]] = {"frame": {0: "batch"}, "speaker": {0: "batch"}, "memory": {0: "batch", 1: "tokens"},
                                           "memory_mask": {0: "batch", 1: "tokens"}, "spectrum": {0: "batch"}, "stop": {0: "batch"}}
        axes.update({n: {0: "batch", 2: "past"} for n in past_in})
        axes.update({n: {0: "batch", 2: "past_plus_one"} for n in past_out})
        torch.onnx.export(DecoderStep(model).eval(), step_inputs, str(out_dir / "decoder_step.onnx"), dynamo=False,
                          opset_version=opset, input_names=["frame", "position", "prenet_masks", "speaker", "memory",
                                                            "memory_mask", *past_in],
                          output_names=["spectrum", "stop", *past_out], dynamic_axes=axes)
        post = PostnetVocoder(model, graphs.post_module.vocoder.cpu()).eval()
        torch.onnx.export(post, (torch.randn(2, 12, config.num_mel_bins),), str(out_dir / "postnet_vocoder.onnx"),
                          dynamo=False, opset_version=opset, input_names=["mel"], output_names=["refined", "waveform"],
                          dynamic_axes={"mel": {0: "batch", 1: "frames"}, "refined": {0: "batch", 1: "frames"},
                                        "waveform": {0: "batch", 1: "samples"}})
    job.synth.tokenizer.save_pretrained(out_dir)
    shutil.copy(RunFiles(job.run_dir).model / SPEAKERS_FILE, out_dir / SPEAKERS_FILE)
    files = {"encoder": "encoder.onnx", "decoder_step": "decoder_step.onnx", "postnet_vocoder": "postnet_vocoder.onnx"}
    keys = ("reduction_factor", "num_mel_bins", "speech_decoder_prenet_layers", "speech_decoder_prenet_units",
            "speech_decoder_prenet_dropout", "max_speech_positions", "max_text_positions")
    meta = {"family": "tts", "files": files, "opset": opset, "layers": layers,
            "heads": config.decoder_attention_heads, "head_dim": config.hidden_size // config.decoder_attention_heads,
            "config": {k: getattr(config, k) for k in keys},
            "why_not_optimum": "optimum-onnx's SpeechT5 export is batch-1, ignores padding and draws its prenet "
                               "dropout inside the graph (no parity possible)"}
    (out_dir / ORT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return {"family": "tts", "files": files, "opset": opset}


def _decode(synth: Synthesizer, graphs: Any, record: list[tuple[torch.Tensor, torch.Tensor]]) -> list[Speech]:
    pieces = [p for t in CHECK_TEXTS for p in synth.prepare(t)]
    vectors = [synth.speaker_vector(None)] * len(pieces)
    enc = synth.tokenizer(pieces, padding=True, return_tensors="pt")
    return decode_batch(graphs, enc.input_ids, enc.attention_mask, torch.from_numpy(np.stack(vectors)),
                        synth.settings, record)


def check_tts_export(job: TtsExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Torch and ORT decode the check texts as one batch: frames, stop steps and waveforms must agree."""
    from dlhw.backends.parity import Decision, check_parity

    ours_rec: list[tuple[torch.Tensor, torch.Tensor]] = []
    theirs_rec: list[tuple[torch.Tensor, torch.Tensor]] = []
    ours = _decode(job.synth, job.synth.graphs, ours_rec)
    theirs = _decode(job.synth, OrtGraphs(out_dir), theirs_rec)
    frames = [s.frames for s in ours]
    stops = Decision("stop steps", "utterance", frames, [s.frames for s in theirs],
                     detail=", ".join(map(str, frames)) + " frames")
    outputs = {"mel_frames": ([r[0] for r in ours_rec], [r[0] for r in theirs_rec]),  # (B, r, M) per step
               "stop_prob": ([r[1] for r in ours_rec], [r[1] for r in theirs_rec]),
               "refined_mel": ([s.mel for s in ours], [s.mel for s in theirs]),
               "waveform": ([s.waveform for s in ours], [s.waveform for s in theirs])}
    return check_parity(outputs, atol, limits={"waveform": 10 * atol}, decisions=[stops],
                        what=f"{len(ours)} utterances decoded as one batch ({len(ours_rec)} steps)",
                        extra={"frames": frames, "steps_compared": len(ours_rec)})


def build_tts_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """TensorRT engines for the three graphs, one shape profile each: batch 1..max_batch, text up to the
    model's ``max_text_positions`` tokens, the decoder's past from empty to the longest decode (one step
    short of ``max_speech_positions / reduction``), the vocoder's mel up to ``max_speech_positions`` frames."""
    from dlhw.backends import open_session
    from dlhw.backends.tensorrt import graph_input_shapes, shape_profiles, tensorrt_providers

    config = json.loads((out_dir / ORT_META).read_text(encoding="utf-8"))["config"]
    tokens, frames = int(config["max_text_positions"]), int(config["max_speech_positions"])
    steps = max(1, frames // int(config["reduction_factor"]) - 1)
    ranges = {"tokens": (1, max(1, tokens // 4), tokens), "past": (0, steps // 2, steps),
              "frames": (1, frames // 2, frames)}
    settings: dict[str, Any] = {"fp16": fp16, "max_batch": max_batch}
    for graph, file in meta["files"].items():
        profile = shape_profiles(graph_input_shapes(out_dir / file), max_batch, tokens, ranges)
        open_session(out_dir / file, tensorrt_providers(out_dir, {**settings, **profile}))  # builds the engine
        settings[graph] = profile
    return settings



def export_tts_hf(run_dir: Path, out_dir: Path) -> HfExport:
    """``dlhw export RUN --hf``: SpeechT5 (``save_pretrained``) with its tokenizer, the HiFi-GAN vocoder in
    ``vocoder/`` and the speakers' x-vectors (``speakers.json``); checked by reloading both models and
    comparing every weight with the run's."""
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    from dlhw.core.download import is_hub_id
    from dlhw.families.tts.model import VOCODER_DIR, load_run_bundle

    bundle = load_run_bundle(run_dir, "cpu")
    bundle.model.save_pretrained(out_dir)
    bundle.tokenizer.save_pretrained(out_dir)
    bundle.vocoder.save_pretrained(out_dir / VOCODER_DIR)
    shutil.copy(RunFiles(run_dir).model / SPEAKERS_FILE, out_dir / SPEAKERS_FILE)
    pairs = [(bundle.model, SpeechT5ForTextToSpeech.from_pretrained(out_dir)),
             (bundle.vocoder, SpeechT5HifiGan.from_pretrained(out_dir / VOCODER_DIR))]
    tensors = 0
    for ours, theirs in pairs:
        mine, saved = ours.state_dict(), theirs.state_dict()
        differ = [k for k in mine if k not in saved or not torch.equal(mine[k], saved[k])]
        if differ:
            raise DlhwError(f"--hf: the reloaded {type(theirs).__name__} differs from the run in {differ[:3]}; "
                            "nothing was written")
        tensors += len(mine)
    base = run_config_dict(run_dir).get("model", {}).get("name") or ""  # null: the tiny SpeechT5
    speaker = next(iter(bundle.speakers), "SPEAKER")
    load = ('folder = "path/to/this/folder"\nimport json\n\nimport torch\n'
            "from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer\n\n"
            "tokenizer = SpeechT5Tokenizer.from_pretrained(folder)\n"
            "model = SpeechT5ForTextToSpeech.from_pretrained(folder)\n"
            'vocoder = SpeechT5HifiGan.from_pretrained(f"{folder}/vocoder")\n'
            'speakers = json.load(open(f"{folder}/speakers.json"))["speakers"]\n'
            f'speaker = torch.tensor(speakers[{speaker!r}])[None]  # (1, 512) x-vector\n'
            'ids = tokenizer("سلام", return_tensors="pt")["input_ids"]\n'
            "waveform = model.generate_speech(ids, speaker, vocoder=vocoder)  # 16 kHz")
    return HfExport(
        form="model", library="transformers", pipeline_tag="text-to-speech",
        base_model=base if is_hub_id(base) else None, method="full fine-tuning (SpeechT5)", load=load,
        check=f"all {tensors} weight tensors of the reloaded SpeechT5 and HiFi-GAN equal the run's",
        limits=("dlhw normalizes Persian text before tokenizing (Persian letters, digits; Latin letters "
                f"{bundle.info.get('latin', 'mapped')}): give the tokenizer text written the same way.",
                f"Speakers are x-vectors of the training voices ({len(bundle.speakers)} in speakers.json, from "
                f"{bundle.info.get('speaker_encoder', 'the run')}'s encoder); SpeechT5 keeps its prenet dropout on "
                "at inference, so two syntheses of one text differ slightly."))
