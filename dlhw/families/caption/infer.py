"""Captioners: one interface over the backends (torch, onnxruntime, tensorrt).

``load_captioner(path, backend)`` takes a run directory or an export directory and returns an
object with ``spec``, ``vocab`` and ``caption(pixels, beam_size) -> Decoded``; decoding is the
same code for every backend (:mod:`dlhw.lm.decoding`). The ONNX backends drive the exported
decoder-step graph with :class:`OrtStepper`; :func:`graph_io` names each architecture's graph
inputs and outputs (the exporter writes the graphs with those names) and which outputs are the
next step's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from dlhw.backends import Backend, open_export, open_session, read_export_meta
from dlhw.errors import ConfigError
from dlhw.families.caption.captions import Vocabulary
from dlhw.families.caption.model import (
    CaptionModel,
    CaptionModelSpec,
    load_caption_model,
    spec_from_dict,
)
from dlhw.lm.decoding import Decoded, decode


class Captioner(Protocol):
    spec: CaptionModelSpec
    vocab: Vocabulary

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded: ...


@dataclass(frozen=True)
class GraphIO:
    """The input and output names of an architecture's two graphs, and how the step's state flows."""

    encoder_outputs: tuple[str, ...]
    step_inputs: tuple[str, ...]
    step_outputs: tuple[str, ...]
    carried: dict[str, str]
    """Step output -> the step input it becomes at the next step (the decoder state)."""
    batch_axis: dict[str, int] = field(default_factory=dict)
    """Where a state's batch dimension is, when not dim 0 (the LSTM states: dim 1)."""
    growing_axis: dict[str, int] = field(default_factory=dict)
    """Step inputs one longer at every step (the self-attention cache) -> that dimension."""


def graph_io(arch: str, layers: int) -> GraphIO:
    """The graphs' names for ``arch``; the Transformer's cache has one key and value per decoder layer."""
    if arch == "rnn":
        return GraphIO(("h", "c"), ("tokens", "h", "c"), ("logits", "h_out", "c_out"),
                       {"h_out": "h", "c_out": "c"}, {"h": 1, "c": 1, "h_out": 1, "c_out": 1})
    if arch == "attention":
        return GraphIO(("h", "c", "annotations", "projected"), ("tokens", "h", "c", "annotations", "projected"),
                       ("logits", "h_out", "c_out", "alpha"), {"h_out": "h", "c_out": "c"})
    cross = tuple(f"cross.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))
    past = tuple(f"past.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))
    present = tuple(f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))
    return GraphIO(cross, ("tokens", "position", "past_mask", *cross, *past), ("logits", "present_mask", *present),
                   dict(zip(("present_mask", *present), ("past_mask", *past), strict=True)),
                   growing_axis={"past_mask": 1, **dict.fromkeys(past, 2)})


def spec_io(spec: CaptionModelSpec) -> GraphIO:
    return graph_io(spec.model.arch, spec.model.num_layers)


class OrtStepper:
    """The decoding stepper over decoder_step.onnx (state kept as numpy arrays, by input name).

    Every step feeds the new tokens and the state, and the outputs named in ``io.carried`` become
    the next step's state. The Transformer's state is the image's cross-attention keys/values (from
    encoder.onnx, fixed) and the self-attention cache (starting empty, t = 0; the graph returns it
    one position longer), plus the step ``position`` = t.
    """

    def __init__(self, io: GraphIO, session: Any):
        self.io = io
        self.session = session

    def init_state(self, encoder_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        state = dict(encoder_outputs)
        if "past_mask" in self.io.step_inputs:
            batch, heads, _, head_dim = state["cross.0.key"].shape  # (B, nh, P, hd)
            state["past_mask"] = np.ones((batch, 0), dtype=np.bool_)  # (B, 0)
            for name in self.io.carried.values():
                if name != "past_mask":
                    state[name] = np.zeros((batch, heads, 0, head_dim), dtype=state["cross.0.key"].dtype)
        return state

    def step(self, tokens: Tensor, state: dict[str, np.ndarray]) -> tuple[Tensor, dict[str, np.ndarray], Tensor | None]:
        feed = {"tokens": tokens.cpu().numpy().astype(np.int64), **state}
        if "position" in self.io.step_inputs:
            feed["position"] = np.array(state["past_mask"].shape[1], dtype=np.int64)  # () = t
        outputs = dict(zip(self.io.step_outputs, self.session.run(None, feed), strict=True))
        new_state = {**state, **{name: outputs[out] for out, name in self.io.carried.items()}}
        alpha = torch.from_numpy(outputs["alpha"]) if "alpha" in outputs else None
        return torch.from_numpy(outputs["logits"]), new_state, alpha

    def reorder_state(self, state: dict[str, np.ndarray], index: Tensor) -> dict[str, np.ndarray]:
        idx = index.cpu().numpy()
        axes = self.io.batch_axis
        return {k: np.take(v, idx, axis=axes.get(k, 0)) for k, v in state.items()}


def load_image_tensor(path: Path, transform: Callable[[Image.Image], Tensor]) -> Tensor:
    """Decode an image file completely (so truncation is caught here) and preprocess it."""
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    with Image.open(path) as img:
        img.load()
        rgb = img.convert("RGB")
    return transform(rgb)


class TorchCaptioner:
    def __init__(self, model: CaptionModel, vocab: Vocabulary, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.spec: CaptionModelSpec = model.spec
        self.vocab = vocab

    @classmethod
    def from_run(cls, run_dir: Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> TorchCaptioner:
        return cls(load_caption_model(run_dir / "model"), Vocabulary.load(run_dir / "model" / "vocab.json"), device,
                   dtype)

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded:
        # the decoding loop scores in float32 (log-softmax of the model's logits) whatever the model's dtype;
        # the attention maps come back in float32 too, as ONNX Runtime's do
        out = self.model.generate(pixel_values=pixels.to(device=self.device, dtype=self.dtype), beam_size=beam_size,
                                  length_penalty=length_penalty)
        return out if out.alphas is None else replace(out, alphas=out.alphas.float())


class OrtCaptioner:
    def __init__(self, export_dir: Path, providers: Callable[[str], list[Any]]):
        """``providers(graph)`` gives the execution providers for "encoder" and "decoder_step"."""
        meta = read_export_meta(export_dir)
        self.meta = meta
        self.spec = spec_from_dict(meta["spec"])
        self.vocab = Vocabulary.load(export_dir / meta["vocab"])
        io = spec_io(self.spec)
        if list(io.step_inputs) != meta.get("step_inputs"):
            raise ConfigError(f"{export_dir}: decoder_step.onnx has the inputs {meta.get('step_inputs')}, this dlhw "
                              f"drives {list(io.step_inputs)}; export the run again with `dlhw export RUN --onnx`")
        threads = torch.get_num_threads()  # as many as the torch backend uses (OMP_NUM_THREADS)
        self.encoder = open_session(export_dir / meta["files"]["encoder"], providers("encoder"), threads)
        step = open_session(export_dir / meta["files"]["decoder_step"], providers("decoder_step"), threads)
        self.stepper = OrtStepper(io, step)
        self.output_names = [o.name for o in self.encoder.get_outputs()]

    def caption(self, pixels: Tensor, beam_size: int = 1, length_penalty: float = 0.7) -> Decoded:
        x = np.ascontiguousarray(pixels.cpu().numpy(), dtype=np.float32)
        outputs = dict(zip(self.output_names, self.encoder.run(None, {"pixel_values": x}), strict=True))
        spec = self.spec
        with one_torch_thread():
            return decode(self.stepper, outputs, x.shape[0], spec.sos_id, spec.eos_id, spec.pad_id,
                          max_new=spec.max_length - 1, beam_size=beam_size, length_penalty=length_penalty)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread while ONNX Runtime decodes: the loop's own torch work between steps is small
    ((B, V) argmax, log-softmax, top-k), and on more threads its OpenMP workers and ONNX Runtime's
    spinning intra-op workers wait on each other (2 cores, 32 captions: 0.4 s of decoding became 0.2 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_captioner(path: str | Path, backend: Backend = "torch", device: str = "cpu",
                   dtype: torch.dtype = torch.float32) -> Captioner:
    """A captioner over a run directory (torch, in ``dtype``) or an export (onnxruntime, tensorrt)."""
    path = Path(path)
    if backend == "torch":
        if not (path / "model" / "config.json").is_file():
            raise ConfigError(f"{path}: the torch backend needs a run directory (with model/); "
                              "for an export directory use --backend onnxruntime")
        return TorchCaptioner.from_run(path, device, dtype)
    export = open_export(path, backend, device)
    return OrtCaptioner(export.export_dir, export.providers_for)


class CaptionPredictor:
    """``dlhw caption``'s predictor (:class:`dlhw.core.family.Predictor`): an image file -> ``{"caption"}``."""

    result_key = "caption"

    def __init__(self, captioner: Captioner, beam_size: int = 1):
        from dlhw.families.caption.model import image_transform

        self.captioner = captioner
        self.beam_size = beam_size
        self.transform = image_transform(captioner.spec)

    def load(self, key: str, raw: Any) -> Tensor:
        return load_image_tensor(Path(raw), self.transform)  # decoded and resized in a loader worker

    def predict(self, batch: list[Tensor]) -> list[dict[str, Any]]:
        decoded = self.captioner.caption(torch.stack(batch), beam_size=self.beam_size)  # (B, 3, H, W)
        return [{"caption": " ".join(self.captioner.vocab.decode(row))} for row in decoded.tokens.tolist()]

    def throughput(self, seconds: float) -> str | None:
        return None


def open_predictor(path: str, backend: str = "torch", device: str = "auto", beam_size: int = 1,
                   dtype: str = "auto") -> CaptionPredictor:
    """The caption family's batch predictor for a run (torch, in ``dtype``: see
    :func:`~dlhw.core.devices.inference_dtype`) or an export (onnxruntime, tensorrt)."""
    from dlhw.core.devices import inference_dtype, resolve_device

    # the torch loader takes cpu/cuda; auto means CUDA when torch sees a GPU
    dev = resolve_device(device, "--device")
    weights = inference_dtype(dtype, dev) if backend == "torch" else torch.float32
    return CaptionPredictor(load_captioner(path, backend, str(dev), weights), beam_size)  # type: ignore[arg-type]
