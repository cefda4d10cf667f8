"""Language-model generation through dlhw's ONNX exports (ONNX Runtime, or its TensorRT provider).

Causal LMs (:class:`OrtChatGenerator`): the export directory holds ``model.onnx`` (:mod:`dlhw.lm.onnx`:
a decoder with KV cache -- inputs ``input_ids, attention_mask, position_ids, logits_index,
past_key_values.{i}.key/value``; outputs ``logits, present.{i}.key/value``), the tokenizer and
``chat.json``. Soft prompts were folded at export:

- prompt tuning / P-tuning: the virtual tokens are rows ``vocab_size..`` of the embedding matrix;
  their ids go right before each prompt (where training put the virtual tokens), and their
  logits are never chosen;
- prefix tuning: ``prefix.npz`` holds the learned key/values, fed as the initial cache, with the
  attention mask covering them.

Prefill asks the graph for the last position's logits only (``logits_index``); :meth:`OrtChatGenerator.loss`
asks for every position. More prompts than ``batch_size`` decode in batches of similar length.

On a GPU provider (CUDA, TensorRT) every step runs with **IO binding**: the KV cache the graph
returns stays in device memory as ``OrtValue``s and is bound as the next step's input, and only the
(B, V) logits come back to the host -- no per-token copy of the cache. The cache's element type is
the graph's (fp16 where the export is half precision).

Seq2seq LMs (:class:`OrtSeq2Seq`): ``encoder_model.onnx`` runs once per prompt and also returns the
decoder's cross-attention keys/values; ``decoder_model.onnx`` steps with the self-attention cache.
It is a :class:`dlhw.lm.generate.Seq2SeqRunner`, so :func:`dlhw.lm.generate.seq2seq_loop` drives it as
it drives torch.

Decoding is :func:`dlhw.lm.generate.causal_loop` / ``seq2seq_loop`` (the one loop, :mod:`dlhw.lm.decoding`),
the same as the torch backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.backends import open_export, open_session, read_export_meta
from dlhw.errors import ConfigError
from dlhw.lm.generate import Generation, causal_loop, in_length_order, left_pad, to_generation
from dlhw.lm.onnx import cache_names
from dlhw.lm.template import ChatCollator, ChatFormatter, Conversation

META_FILE = "chat.json"
"""What decoding needs besides the graph: vocabulary size, virtual ids, stop and pad ids, cache shape."""

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

_ELEMENT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class GraphRunner:
    """One ONNX Runtime session run with plain feeds (CPU) or IO binding (GPU: outputs stay on the device).

    ``run(feeds, keep)`` returns the outputs in the session's output order: the names in ``keep``
    as ``OrtValue``s left where the session put them (GPU memory under IO binding), the others as
    numpy arrays. Inputs may be numpy arrays or ``OrtValue``s from an earlier run.
    """

    def __init__(self, session: Any, device_id: int = 0, io_binding: bool | None = None):
        self.session = session
        self.inputs = {i.name for i in session.get_inputs()}
        self.outputs = [o.name for o in session.get_outputs()]
        providers = session.get_providers()
        on_gpu = bool(providers) and providers[0] in GPU_PROVIDERS
        self.io_binding = on_gpu if io_binding is None else io_binding
        self.device = ("cuda", device_id) if on_gpu else ("cpu", 0)
        self.cache_type = _ELEMENT_TYPES.get(
            next((i.type for i in session.get_inputs() if i.name.startswith("past_key_values")), "tensor(float)"),
            np.float32)

    def run(self, feeds: dict[str, Any], keep: tuple[str, ...] = ()) -> list[Any]:
        import onnxruntime as ort

        feeds = {k: v for k, v in feeds.items() if k in self.inputs}
        if not self.io_binding:
            plain = {k: (v.numpy() if isinstance(v, ort.OrtValue) else v) for k, v in feeds.items()}
            return list(self.session.run(None, plain))
        binding = self.session.io_binding()
        kind, index = self.device
        for name, value in feeds.items():
            if not isinstance(value, ort.OrtValue):
                value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), kind, index)
            binding.bind_ortvalue_input(name, value)
        for name in self.outputs:
            if name in keep:
                binding.bind_output(name, kind, index)  # allocated by ONNX Runtime where it runs
            else:
                binding.bind_output(name, "cpu")  # what the host reads (logits)
        binding.synchronize_inputs()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        values = binding.get_outputs()
        return [v if name in keep else v.numpy() for name, v in zip(self.outputs, values, strict=True)]


class OrtChatGenerator:
    """The exported model behind the same ``generate`` as :class:`~dlhw.lm.generate.ChatGenerator`."""

    def __init__(self, export_dir: Path, providers: list[Any] | None = None, max_new_tokens: int = 64,
                 model_file: str = "model.onnx", pick: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int | None = None, io_binding: bool | None = None):
        from transformers import AutoTokenizer

        if not (export_dir / META_FILE).is_file():
            raise ConfigError(f"{export_dir}: not a chat export (no {META_FILE}); make one with `dlhw export RUN --onnx`")
        self.meta = read_export_meta(export_dir, META_FILE)
        if not (export_dir / model_file).is_file():
            raise ConfigError(f"{export_dir}: no {model_file} (export with `dlhw export RUN --onnx`"
                              + (" --int8" if "int8" in model_file else "") + ")")
        self.session = open_session(export_dir / model_file, providers or ["CPUExecutionProvider"])
        self.runner = GraphRunner(self.session, io_binding=io_binding)
        self.tokenizer = AutoTokenizer.from_pretrained(export_dir)
        self.formatter = (ChatFormatter(self.tokenizer, self.meta["max_length"])
                          if self.tokenizer.chat_template is not None else None)
        self.pick = pick
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop_ids = self.meta["stop_ids"]
        self.pad_id = self.meta["pad_id"]
        self.vocab_size = self.meta["vocab_size"]
        self.virtual_ids = self.meta.get("virtual_ids") or []
        self.layers = self.meta["num_layers"]
        self.cache_names = cache_names(self.layers)
        self.present_names = tuple(cache_names(self.layers, "present"))
        self.kv_shape = (self.meta["num_kv_heads"], self.meta["head_dim"])
        prefix = export_dir / "prefix.npz"
        self.prefix = dict(np.load(prefix)) if prefix.is_file() else None  # key_i / value_i: (kv, n, d)
        self.float_type = self.runner.cache_type

    def left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return left_pad(prompts, self.pad_id)

    def _empty_cache(self, batch: int) -> list[np.ndarray]:
        if self.prefix is not None:
            return [np.repeat(self.prefix[f"{kind}_{i}"][None], batch, axis=0).astype(self.float_type)  # (B, kv, n, d)
                    for i in range(self.layers) for kind in ("key", "value")]
        return [np.zeros((batch, self.kv_shape[0], 0, self.kv_shape[1]), dtype=self.float_type)
                for _ in range(2 * self.layers)]

    def forward_fn(self) -> Callable[..., tuple[torch.Tensor, list[Any]]]:
        names = self.cache_names

        def forward(step: dict[str, Any], mask: torch.Tensor, positions: torch.Tensor,
                    cache: list[Any]) -> tuple[torch.Tensor, list[Any]]:
            ids = step["input_ids"].numpy().astype(np.int64)  # (B, T)
            feeds = {"input_ids": ids, "attention_mask": mask.numpy().astype(np.int64),
                     "position_ids": positions.numpy().astype(np.int64),
                     "logits_index": np.array([ids.shape[1] - 1], dtype=np.int64),  # the last position only
                     **dict(zip(names, cache, strict=True))}
            logits, *present = self.runner.run(feeds, keep=self.present_names)  # (B, 1, V + virtual), 2L caches
            last = torch.from_numpy(np.asarray(logits[:, -1, : self.vocab_size], dtype=np.float32))  # (B, V)
            return last, present

        return forward

    def generate(self, conversations: list[Conversation], streamer: Any = None,
                 record: list[torch.Tensor] | None = None) -> list[Generation]:
        if self.formatter is None:
            raise ConfigError("the exported tokenizer has no chat template: give prompts as token ids (generate_ids)")
        return self.generate_ids([self.formatter.prompt_ids(c) for c in conversations], streamer, record)

    def generate_ids(self, prompts: list[list[int]], streamer: Any = None,
                     record: list[torch.Tensor] | None = None) -> list[Generation]:
        """Answers to prompt token ids (virtual-token ids put in front), as the torch generator does;
        more prompts than ``batch_size`` decode in batches of similar length, answers in input order."""
        return in_length_order(prompts, self.batch_size, lambda batch: self._generate_batch(batch, streamer, record))

    def _generate_batch(self, prompts: list[list[int]], streamer: Any,
                        record: list[torch.Tensor] | None) -> list[Generation]:
        ids, mask = self.left_pad([self.virtual_ids + p for p in prompts])  # (B, T)
        batch = ids.shape[0]
        if self.prefix is not None:
            n = self.prefix["key_0"].shape[1]
            mask = torch.cat([torch.ones((batch, n), dtype=mask.dtype), mask], dim=1)  # (B, n + T)
        rows = causal_loop(self.forward_fn(), {"input_ids": ids}, mask, ids.shape[1], self._empty_cache(batch),
                           self.max_new_tokens, self.stop_ids, self.pad_id, streamer, record, self.pick)
        return [to_generation(row, self.tokenizer, self.stop_ids) for row in rows]

    def loss(self, items: list[dict[str, list[int]]], batch_size: int = 16) -> dict[str, float]:
        """Mean loss per labelled token (and perplexity) of encoded conversations, one forward each."""
        total, tokens = 0.0, 0
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            virtual = len(self.virtual_ids)
            batch = ChatCollator(self.pad_id)([  # right padding, as in training
                {"input_ids": self.virtual_ids + it["input_ids"], "labels": [-100] * virtual + it["labels"]}
                for it in chunk])
            ids, lab, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]  # (B, T) each
            width = ids.shape[1]
            full = mask
            if self.prefix is not None:
                n = self.prefix["key_0"].shape[1]
                full = torch.cat([torch.ones((len(chunk), n), dtype=mask.dtype), mask], dim=1)
            positions = (full.cumsum(-1) - 1).clamp(min=0)[:, -width:]
            feeds = {"input_ids": ids.numpy(), "attention_mask": full.numpy(), "position_ids": positions.numpy(),
                     "logits_index": np.arange(width, dtype=np.int64),  # every position: the loss needs them all
                     **dict(zip(self.cache_names, self._empty_cache(len(chunk)), strict=True))}
            raw = self.runner.run(feeds)[0][..., : self.vocab_size]  # (B, T, V)
            logits = torch.from_numpy(np.asarray(raw, dtype=np.float32))
            shift = lab[:, 1:]
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), shift.reshape(-1),
                                                   ignore_index=-100, reduction="sum")
            total += float(ce)
            tokens += int(shift.ne(-100).sum())
        loss = total / max(tokens, 1)
        return {"test_loss": loss, "perplexity": float(np.exp(min(loss, 50.0)))}


def _repeat_rows(value: Any, n: int) -> np.ndarray:
    """A numpy array or ``OrtValue`` with every row ``n`` times, adjacent, as a host array."""
    import onnxruntime as ort

    return np.repeat(value.numpy() if isinstance(value, ort.OrtValue) else value, n, axis=0)


class OrtSeq2Seq:
    """An exported encoder-decoder LM (:func:`dlhw.lm.onnx.export_seq2seq_graphs`) as a
    :class:`dlhw.lm.generate.Seq2SeqRunner`, with the run's configs for stop ids and start token."""

    def __init__(self, export_dir: Path, providers: list[Any] | None = None,
                 providers_for: Callable[[str], list[Any]] | None = None, io_binding: bool | None = None):
        from transformers import AutoConfig, GenerationConfig

        for name in ("encoder_model.onnx", "decoder_model.onnx"):
            if not (export_dir / name).is_file():
                raise ConfigError(f"{export_dir}: no {name}; make the export with `dlhw export RUN --onnx`")

        def chosen(graph: str) -> list[Any]:
            return (providers_for(graph) if providers_for else providers) or ["CPUExecutionProvider"]

        self.encoder = GraphRunner(open_session(export_dir / "encoder_model.onnx", chosen("encoder_model")),
                                   io_binding=io_binding)
        self.decoder = GraphRunner(open_session(export_dir / "decoder_model.onnx", chosen("decoder_model")),
                                   io_binding=io_binding)
        self.config = AutoConfig.from_pretrained(export_dir)
        self.generation_config = (GenerationConfig.from_pretrained(export_dir)
                                  if (export_dir / "generation_config.json").is_file() else None)
        start = getattr(self.generation_config, "decoder_start_token_id", None)
        self.decoder_start_token_id = int(self.config.decoder_start_token_id if start is None else start)
        self.layers = int(self.config.num_decoder_layers)
        self.cross_names = cache_names(self.layers, "cross")
        self.cache_names = cache_names(self.layers)
        self.present_names = tuple(cache_names(self.layers, "present"))
        self.heads, self.head_dim = int(self.config.num_heads), int(self.config.d_kv)
        self.device = torch.device("cpu")

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        """Encoder states and cross keys/values; under IO binding they stay on the device for every step."""
        hidden, *cross = self.encoder.run({"input_ids": input_ids.cpu().numpy().astype(np.int64),
                                           "attention_mask": attention_mask.cpu().numpy().astype(np.int64)},
                                          keep=("last_hidden_state", *self.cross_names))
        return {"encoder_hidden_states": hidden, "encoder_attention_mask": attention_mask.cpu().numpy().astype(np.int64),
                **dict(zip(self.cross_names, cross, strict=True))}  # (B, S, H), (B, S), 2L x (B, h, S, d)

    def repeat(self, memory: dict[str, Any], n: int) -> dict[str, Any]:
        """Every row ``n`` times, adjacent (through the host once; the next step binds the copies)."""
        return {k: _repeat_rows(v, n) for k, v in memory.items()}

    def repeat_cache(self, cache: list[Any], n: int) -> list[Any]:
        return [_repeat_rows(v, n) for v in cache]

    def step(self, tokens: torch.Tensor, memory: dict[str, Any], cache: Any) -> tuple[torch.Tensor, Any]:
        batch = tokens.shape[0]
        if cache is None:
            cache = [np.zeros((batch, self.heads, 0, self.head_dim), dtype=self.decoder.cache_type)
                     for _ in range(2 * self.layers)]
        feeds = {"decoder_input_ids": tokens.cpu().numpy().astype(np.int64), **memory,
                 **dict(zip(self.cache_names, cache, strict=True))}
        logits, *present = self.decoder.run(feeds, keep=self.present_names)  # (B, T, V), 2L caches
        return torch.from_numpy(np.asarray(logits, dtype=np.float32)), present

    def teacher_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       labels: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, V) of ``labels`` (B, K) fed after the start token, as ``model(labels=...)`` gives."""
        start = torch.full((labels.shape[0], 1), self.decoder_start_token_id, dtype=torch.long)
        shifted = torch.cat([start, labels[:, :-1].cpu()], dim=1)  # (B, K)
        return self.step(shifted, self.encode(input_ids, attention_mask), None)[0]


def load_generator(path: str | Path, backend: str = "torch", device: str = "auto", max_new_tokens: int = 128,
                   int8: bool = False, batch_size: int | None = None) -> Any:
    """A generator for a causal-LM run (torch) or its ONNX export (onnxruntime, tensorrt)."""
    from dlhw.lm.generate import ChatGenerator
    from dlhw.lm.run import is_chat_run, load_chat_run

    path = Path(path)
    if backend == "torch":
        if int8:
            raise ConfigError("--int8 runs the quantized ONNX model: use it with --backend onnxruntime")
        if not is_chat_run(path):
            raise ConfigError(f"{path}: the torch backend needs a chat run directory; for an export directory "
                              "use --backend onnxruntime")
        loaded = load_chat_run(path, device)
        return ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens, loaded.config.data.max_length,
                             batch_size=batch_size)
    export = open_export(path, backend, device)  # TensorRT checked before anything else: fails within seconds
    model_file = "model.int8.onnx" if int8 else "model.onnx"
    return OrtChatGenerator(export.export_dir, export.providers, max_new_tokens, model_file, batch_size=batch_size)
