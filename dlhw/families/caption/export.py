"""ONNX graphs of a captioner: the encoder (pixels -> initial decoder state) and one decoder step.

| arch        | encoder.onnx outputs              | decoder_step.onnx: inputs -> outputs                       |
|-------------|-----------------------------------|------------------------------------------------------------|
| rnn         | h, c (L, B, H)                    | tokens, h, c -> logits, h_out, c_out                       |
| attention   | h, c, annotations, projected      | tokens, h, c, annotations, projected -> logits, h_out, c_out, alpha |
| transformer | memory (B, P, D)                  | memory, prefix (B, L), last () -> logits at position last   |

Batch is dynamic everywhere (dim 1 of the LSTM states). The Transformer prefix is padded to the
fixed length L = max_length - 1 (the traced attention reshapes need a static length); the causal
mask keeps the padding after ``last`` from changing the logits there.
:class:`dlhw.families.caption.infer.OrtStepper` drives these graphs with the same decoding code as
torch (:mod:`dlhw.lm.decoding`); the graphs' input and output names live beside it (``IO``).
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
from dlhw.families.caption.infer import IO, GraphIO, OrtStepper
from dlhw.families.caption.model import CaptionModel, load_caption_model


class EncoderGraph(nn.Module):
    """pixels (B, 3, S, S) -> the decoder's initial state."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encoder(pixel_values)  # (B, [P,] F)
        if self.model.spec.model.arch == "transformer":
            return (memory,)  # the prefix starts empty; the stepper keeps it
        return tuple(self.model.decoder.init_state(memory))  # type: ignore[operator]


class StepGraph(nn.Module):
    """One decoding step of the model's decoder, with the state as explicit inputs/outputs."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model
        self.arch = model.spec.model.arch

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        decoder = self.model.decoder
        if self.arch == "transformer":
            memory, prefix, last = inputs
            logits, _ = decoder(memory, prefix)  # (B, L, V)
            return (torch.index_select(logits, 1, last.view(1)).squeeze(1),)  # (B, V)
        tokens, *state = inputs
        logits, new_state, alpha = decoder.step(tokens, tuple(state))  # type: ignore[operator]
        out = (logits, new_state[0], new_state[1])  # logits, h, c
        return (*out, alpha) if self.arch == "attention" else out


def dummy_inputs(model: CaptionModel, batch: int = 2) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Pixels for the encoder and matching step inputs (a 3-token prefix for the transformer)."""
    spec = model.spec
    pixels = torch.randn(batch, 3, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        state = EncoderGraph(model)(pixels)
    tokens = torch.full((batch,), spec.sos_id, dtype=torch.long)
    if spec.model.arch == "transformer":
        prefix = torch.full((batch, spec.max_length - 1), spec.pad_id, dtype=torch.long)
        prefix[:, :3] = torch.tensor([spec.sos_id, 4, 5])
        return pixels, (state[0], prefix, torch.tensor(2, dtype=torch.long))
    return pixels, (tokens, *state)


def dynamic_axes(arch: str) -> tuple[dict[str, dict[int, str]], dict[str, dict[int, str]]]:
    io = IO[arch]
    enc = {"pixel_values": {0: "batch"}, **{n: {io.state_batch_axis[n]: "batch"} for n in io.encoder_outputs}}
    step: dict[str, dict[int, str]] = {}
    for name in (*io.step_inputs, *io.step_outputs):
        base = name.removesuffix("_out")
        step[name] = {io.state_batch_axis.get(base, 0): "batch"}
    step.pop("last", None)  # a scalar
    return enc, step


def export_graphs(model: CaptionModel, out_dir: Any, opset: int) -> dict[str, str]:
    """Write encoder.onnx and decoder_step.onnx; return their file names."""
    arch = model.spec.model.arch
    io = IO[arch]
    model = model.cpu().eval()
    pixels, step_inputs = dummy_inputs(model)
    enc_axes, step_axes = dynamic_axes(arch)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's fused inference kernel has no ONNX symbolic: trace the plain ops
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        _export_both(model, pixels, step_inputs, out_dir, opset, io, enc_axes, step_axes)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return {"encoder": "encoder.onnx", "decoder_step": "decoder_step.onnx"}


def _export_both(model: CaptionModel, pixels: Tensor, step_inputs: tuple[Tensor, ...], out_dir: Any, opset: int,
                 io: GraphIO, enc_axes: dict, step_axes: dict) -> None:
    with torch.no_grad():
        torch.onnx.export(
            EncoderGraph(model).eval(), (pixels,), str(out_dir / "encoder.onnx"), dynamo=False, opset_version=opset,
            input_names=["pixel_values"], output_names=list(io.encoder_outputs), dynamic_axes=enc_axes,
        )
        torch.onnx.export(
            StepGraph(model).eval(), step_inputs, str(out_dir / "decoder_step.onnx"), dynamo=False, opset_version=opset,
            input_names=list(io.step_inputs), output_names=list(io.step_outputs), dynamic_axes=step_axes,
        )


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
    io = IO[model.spec.model.arch]
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
    ort_tokens = decode(OrtStepper(spec.model.arch, step, spec.pad_id, spec.max_length), memory, batch, spec.sos_id,
                        spec.eos_id, spec.pad_id, max_new=spec.max_length - 1).tokens  # (B, L')
    n = min(torch_tokens.size(1), ort_tokens.size(1))
    tokens = greedy_tokens(torch_tokens[:, :n].tolist(), ort_tokens[:, :n].tolist(), "image", pad_id=spec.pad_id)
    return check_parity(outputs, atol, decisions=[tokens], what=f"a check batch of {batch} images",
                        extra={"greedy_tokens_equal": True, "check_batch": batch})


def build_caption_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """Build and cache TensorRT engines for both graphs (batch 1..max_batch)."""
    from dlhw.backends.tensorrt import shape_profiles, tensorrt_providers

    spec = meta["spec"]
    size = spec["image_size"]
    settings: dict[str, Any] = {"fp16": fp16, "max_batch": max_batch}
    enc_profile = shape_profiles({"pixel_values": ["batch", 3, size, size]}, max_batch, 1)
    session = open_session(out_dir / "encoder.onnx", tensorrt_providers(out_dir, {**settings, **enc_profile}))
    outputs = session.run(None, {"pixel_values": np.zeros((1, 3, size, size), np.float32)})
    shapes = {}
    for name, value in zip(meta["encoder_outputs"], outputs, strict=True):
        dims: list[int | str] = list(value.shape)
        dims[IO[meta["arch"]].state_batch_axis[name]] = "batch"
        shapes[name] = dims
    if meta["arch"] == "transformer":
        shapes["prefix"] = ["batch", spec["max_length"] - 1]
        shapes["last"] = []
    else:
        shapes = {"tokens": ["batch"], **shapes}
    step_profile = shape_profiles(shapes, max_batch, spec["max_length"])
    open_session(out_dir / "decoder_step.onnx", tensorrt_providers(out_dir, {**settings, **step_profile}))
    return {**settings, "encoder": enc_profile, "decoder_step": step_profile, "cache": "trt_cache"}
