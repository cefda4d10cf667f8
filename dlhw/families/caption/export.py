"""ONNX graphs of a captioner: the encoder (pixels -> initial decoder state) and one decoder step.

| arch        | encoder.onnx outputs              | decoder_step.onnx: inputs -> outputs                       |
|-------------|-----------------------------------|------------------------------------------------------------|
| rnn         | h, c (L, B, H)                    | tokens, h, c -> logits, h_out, c_out                       |
| attention   | h, c, annotations, projected      | tokens, h, c, annotations, projected -> logits, h_out, c_out, alpha |
| transformer | cross.{i}.key, cross.{i}.value    | tokens (B,), position (), past_mask (B, t), cross.{i}.key/value, |
|             | (B, nh, P, hd), i < layers        | past.{i}.key/value (B, nh, t, hd) -> logits (B, V),        |
|             |                                   | present_mask (B, t+1), present.{i}.key/value (B, nh, t+1, hd) |

Batch is dynamic everywhere (dim 1 of the LSTM states). The Transformer step is incremental: the
encoder graph projects the image into every layer's cross-attention keys/values once; each step
feeds the new tokens only, at ``position`` t, against the self-attention keys/values of the t
tokens fed before (t dynamic, 0 at the first step), and returns that cache one position longer.
``past_mask`` is False where a token fed was <pad>, whose key stays hidden as in training. The
graph traces :meth:`TransformerCaptionDecoder.incremental`, the arithmetic the torch backend runs.
:class:`dlhw.families.caption.infer.OrtStepper` drives these graphs with the same decoding code as
torch (:mod:`dlhw.lm.decoding`); the graphs' input and output names live beside it (:func:`graph_io`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlhw.backends import open_session
from dlhw.core.runs import RunFiles
from dlhw.families.caption.infer import GraphIO, OrtStepper, graph_io, spec_io
from dlhw.families.caption.model import (
    CaptionModel,
    TransformerCache,
    TransformerCaptionDecoder,
    load_caption_model,
)


class EncoderGraph(nn.Module):
    """pixels (B, 3, S, S) -> the decoder's initial state."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encoder(pixel_values)  # (B, [P,] F)
        decoder = self.model.decoder
        if isinstance(decoder, TransformerCaptionDecoder):
            return decoder.cross_keys_values(memory)  # 2 x layers of (B, nh, P, hd); the self-attention cache starts empty
        return tuple(decoder.init_state(memory))  # type: ignore[operator]


class StepGraph(nn.Module):
    """One decoding step of the model's decoder, with the state as explicit inputs/outputs."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        decoder = self.model.decoder
        if isinstance(decoder, TransformerCaptionDecoder):
            tokens, position, past_mask, *caches = inputs
            n = 2 * len(decoder.layers())  # cross first, then past: a key and a value per layer
            cache = TransformerCache(tuple(caches[:n]), tuple(caches[n:]), past_mask)
            logits, cache = decoder.incremental(tokens, position, cache)  # (B, V)
            return (logits, cache.keep, *cache.past)  # (B, V), (B, t+1), 2 x layers of (B, nh, t+1, hd)
        tokens, *state = inputs
        logits, new_state, alpha = decoder.step(tokens, tuple(state))  # type: ignore[operator]
        out = (logits, new_state[0], new_state[1])  # logits, h, c
        return (*out, alpha) if alpha is not None else out


def dummy_inputs(model: CaptionModel, batch: int = 2) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Pixels for the encoder and matching step inputs (the Transformer: after a 3-token prefix)."""
    spec = model.spec
    pixels = torch.randn(batch, 3, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0))
    decoder = model.decoder
    with torch.no_grad():
        state = EncoderGraph(model)(pixels)
        if isinstance(decoder, TransformerCaptionDecoder):
            prefix = torch.tensor([spec.sos_id, 4, 5]).repeat(batch, 1)  # (B, 3)
            prefix[-1, 2] = spec.pad_id  # one <pad> in the cache: past_mask must hide it
            cache = decoder.init_state(model.encoder(pixels))
            for t in range(prefix.size(1)):
                _, cache = decoder.incremental(prefix[:, t], torch.tensor(t), cache)
            tokens = torch.full((batch,), 6, dtype=torch.long)
            return pixels, (tokens, torch.tensor(prefix.size(1)), cache.keep, *cache.cross, *cache.past)
    return pixels, (torch.full((batch,), spec.sos_id, dtype=torch.long), *state)


def dynamic_axes(io: GraphIO) -> tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]:
    """Batch dimensions of both graphs; the cache's length is ``past`` in, ``past_plus_one`` out."""
    enc = {"pixel_values": {0: "batch"}, **{n: {io.batch_axis.get(n, 0): "batch"} for n in io.encoder_outputs}}
    step: dict[str, dict[int, str]] = {}
    for name in io.step_inputs:
        if name != "position":  # a scalar
            step[name] = {io.batch_axis.get(name, 0): "batch"}
            if name in io.growing_axis:
                step[name][io.growing_axis[name]] = "past"
    for name in io.step_outputs:
        step[name] = {io.batch_axis.get(name, 0): "batch"}
        fed = io.carried.get(name, "")
        if fed in io.growing_axis:
            step[name][io.growing_axis[fed]] = "past_plus_one"
    return enc, step


def export_graphs(model: CaptionModel, out_dir: Any, opset: int) -> dict[str, str]:
    """Write encoder.onnx and decoder_step.onnx; return their file names."""
    io = spec_io(model.spec)
    model = model.cpu().eval()
    pixels, step_inputs = dummy_inputs(model)
    enc_axes, step_axes = dynamic_axes(io)
    with torch.no_grad():
        torch.onnx.export(
            EncoderGraph(model).eval(), (pixels,), str(out_dir / "encoder.onnx"), dynamo=False, opset_version=opset,
            input_names=["pixel_values"], output_names=list(io.encoder_outputs), dynamic_axes=enc_axes,
        )
        torch.onnx.export(
            StepGraph(model).eval(), step_inputs, str(out_dir / "decoder_step.onnx"), dynamo=False, opset_version=opset,
            input_names=list(io.step_inputs), output_names=list(io.step_outputs), dynamic_axes=step_axes,
        )
    return {"encoder": "encoder.onnx", "decoder_step": "decoder_step.onnx"}


@dataclass
class CaptionExport:
    """A caption run loaded once for its whole export."""

    run_dir: Path
    model: CaptionModel


def load_for_export(run_dir: Path) -> CaptionExport:
    return CaptionExport(run_dir, load_caption_model(RunFiles(run_dir).model))


def export_caption(job: CaptionExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Export a caption run's encoder and decoder step, with the metadata inference needs."""
    import shutil
    from dataclasses import asdict

    model = job.model
    files = export_graphs(model, out_dir, opset)
    shutil.copy(RunFiles(job.run_dir).model / "vocab.json", out_dir / "vocab.json")
    io = spec_io(model.spec)
    return {
        "family": "caption",
        "arch": model.spec.model.arch,
        "files": files,
        "vocab": "vocab.json",
        "spec": asdict(model.spec),
        "opset": opset,
        "encoder_outputs": list(io.encoder_outputs),
        "step_inputs": list(io.step_inputs),
        "step_outputs": list(io.step_outputs),
        "preprocessing": {"resize": [model.spec.image_size] * 2, "mean": list(model.spec.mean),
                          "std": list(model.spec.std), "input": "RGB, float in [0, 1], then normalised"},
    }


def check_caption_export(job: CaptionExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """Same inputs through torch and ORT: encoder outputs, step logits, greedy tokens."""
    from dlhw.backends.parity import check_parity
    from dlhw.lm.decoding import decode
    from dlhw.lm.parity import greedy_tokens

    model = job.model.eval()  # the exporter restores its wrappers' mode: compare in inference mode
    spec = model.spec
    batch = 4
    pixels, step_inputs = dummy_inputs(model, batch=batch)
    enc = open_session(out_dir / "encoder.onnx", ["CPUExecutionProvider"])
    step = open_session(out_dir / "decoder_step.onnx", ["CPUExecutionProvider"])
    with torch.no_grad():
        torch_enc = EncoderGraph(model)(pixels)
        torch_step = StepGraph(model)(*step_inputs)
        torch_tokens = model.generate(pixel_values=pixels).tokens  # (B, L)
    ort_enc = enc.run(None, {"pixel_values": pixels.numpy()})
    ort_step = step.run(None, {n: t.numpy() for n, t in zip(meta["step_inputs"], step_inputs, strict=True)})
    outputs = {name: (a, b) for name, a, b in [*zip(meta["encoder_outputs"], torch_enc, ort_enc, strict=True),
                                              *zip(meta["step_outputs"], torch_step, ort_step, strict=True)]}
    memory = dict(zip(meta["encoder_outputs"], ort_enc, strict=True))
    ort_tokens = decode(OrtStepper(spec_io(spec), step), memory, batch, spec.sos_id, spec.eos_id, spec.pad_id,
                        max_new=spec.max_length - 1).tokens  # (B, L')
    n = min(torch_tokens.size(1), ort_tokens.size(1))
    tokens = greedy_tokens(torch_tokens[:, :n].tolist(), ort_tokens[:, :n].tolist(), "image", pad_id=spec.pad_id)
    return check_parity(outputs, atol, decisions=[tokens], what=f"a check batch of {batch} images",
                        extra={"greedy_tokens_equal": True, "check_batch": batch})


def build_caption_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """Build and cache TensorRT engines for both graphs (batch 1..max_batch; the Transformer's cache
    0..max_length - 2 earlier tokens, the most a caption of max_length - 1 steps feeds before its last step)."""
    from dlhw.backends.tensorrt import shape_profiles, tensorrt_providers

    spec = meta["spec"]
    size = spec["image_size"]
    io = graph_io(meta["arch"], spec["model"]["num_layers"])
    settings: dict[str, Any] = {"fp16": fp16, "max_batch": max_batch}
    enc_profile = shape_profiles({"pixel_values": ["batch", 3, size, size]}, max_batch, 1)
    session = open_session(out_dir / "encoder.onnx", tensorrt_providers(out_dir, {**settings, **enc_profile}))
    outputs = session.run(None, {"pixel_values": np.zeros((1, 3, size, size), np.float32)})
    shapes: dict[str, list[int | str]] = {}
    for name, value in zip(meta["encoder_outputs"], outputs, strict=True):
        dims: list[int | str] = list(value.shape)
        dims[io.batch_axis.get(name, 0)] = "batch"
        shapes[name] = dims
    shapes = {"tokens": ["batch"], **shapes}
    if io.growing_axis:
        _, heads, _, head_dim = outputs[0].shape  # cross.0.key (1, nh, P, hd)
        shapes["past_mask"] = ["batch", "past"]
        shapes.update({name: ["batch", heads, "past", head_dim] for name in io.carried.values() if name != "past_mask"})
        longest = spec["max_length"] - 2
        step_profile = shape_profiles(shapes, max_batch, spec["max_length"], {"past": (0, longest // 2, longest)})
    else:
        step_profile = shape_profiles(shapes, max_batch, spec["max_length"])
    open_session(out_dir / "decoder_step.onnx", tensorrt_providers(out_dir, {**settings, **step_profile}))
    return {**settings, "encoder": enc_profile, "decoder_step": step_profile, "cache": "trt_cache"}

