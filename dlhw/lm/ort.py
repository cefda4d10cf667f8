"""Greedy chat generation through an exported decoder (ONNX Runtime, or its TensorRT provider).

The export directory holds ``model.onnx`` (optimum-onnx, a decoder with KV cache: inputs
``input_ids, attention_mask, position_ids, past_key_values.{i}.key/value``; outputs ``logits,
present.{i}.key/value``), the tokenizer and ``chat.json``. Soft prompts were folded at export:

- prompt tuning / P-tuning: the virtual tokens are rows ``vocab_size..`` of the embedding matrix;
  their ids go right before each prompt (where training put the virtual tokens), and their
  logits are never chosen;
- prefix tuning: ``prefix.npz`` holds the learned key/values, fed as the initial cache, with the
  attention mask covering them.

Decoding is :func:`dlhw.lm.generate.causal_loop` (the one loop, :mod:`dlhw.lm.decoding`), the same as
the torch backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.backends import open_export, open_session
from dlhw.errors import ConfigError
from dlhw.lm.generate import Generation, causal_loop, left_pad, to_generation
from dlhw.lm.template import ChatCollator, ChatFormatter, Conversation

META_FILE = "chat.json"
"""What decoding needs besides the graph: vocabulary size, virtual ids, stop and pad ids, cache shape."""


class OrtChatGenerator:
    """The exported model behind the same ``generate`` as :class:`~dlhw.lm.generate.ChatGenerator`."""

    def __init__(self, export_dir: Path, providers: list[Any] | None = None, max_new_tokens: int = 64,
                 model_file: str = "model.onnx", pick: Callable[[torch.Tensor], torch.Tensor] | None = None):
        from transformers import AutoTokenizer

        if not (export_dir / META_FILE).is_file():
            raise ConfigError(f"{export_dir}: not a chat export (no {META_FILE}); make one with `dlhw export RUN --onnx`")
        self.meta = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
        if not (export_dir / model_file).is_file():
            raise ConfigError(f"{export_dir}: no {model_file} (export with `dlhw export RUN --onnx`"
                              + (" --int8" if "int8" in model_file else "") + ")")
        self.session = open_session(export_dir / model_file, providers or ["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(export_dir)
        self.formatter = (ChatFormatter(self.tokenizer, self.meta["max_length"])
                          if self.tokenizer.chat_template is not None else None)
        self.pick = pick
        self.max_new_tokens = max_new_tokens
        self.stop_ids = self.meta["stop_ids"]
        self.pad_id = self.meta["pad_id"]
        self.vocab_size = self.meta["vocab_size"]
        self.virtual_ids = self.meta.get("virtual_ids") or []
        self.layers = self.meta["num_layers"]
        self.cache_names = [f"past_key_values.{i}.{kind}" for i in range(self.layers) for kind in ("key", "value")]
        self.kv_shape = (self.meta["num_kv_heads"], self.meta["head_dim"])
        prefix = export_dir / "prefix.npz"
        self.prefix = dict(np.load(prefix)) if prefix.is_file() else None  # key_i / value_i: (kv, n, d)
        self.float_type = np.float32

    def left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return left_pad(prompts, self.pad_id)

    def _empty_cache(self, batch: int) -> list[np.ndarray]:
        if self.prefix is not None:
            return [np.repeat(self.prefix[f"{kind}_{i}"][None], batch, axis=0)  # (B, kv, n, d)
                    for i in range(self.layers) for kind in ("key", "value")]
        return [np.zeros((batch, *self.kv_shape[:1], 0, self.kv_shape[1]), dtype=self.float_type)
                for _ in range(2 * self.layers)]

    def forward_fn(self) -> Callable[..., tuple[torch.Tensor, list[np.ndarray]]]:
        names = self.cache_names

        def forward(step: dict[str, Any], mask: torch.Tensor, positions: torch.Tensor,
                    cache: list[np.ndarray]) -> tuple[torch.Tensor, list[np.ndarray]]:
            feeds = {"input_ids": step["input_ids"].numpy().astype(np.int64),
                     "attention_mask": mask.numpy().astype(np.int64),
                     "position_ids": positions.numpy().astype(np.int64), **dict(zip(names, cache, strict=True))}
            logits, *present = self.session.run(None, feeds)  # (B, T, V + virtual), 2L x (B, kv, P, d)
            last = torch.from_numpy(logits[:, -1, : self.vocab_size].copy())  # (B, V): virtual ids never chosen
            return last, present

        return forward

    def generate(self, conversations: list[Conversation], streamer: Any = None,
                 record: list[torch.Tensor] | None = None) -> list[Generation]:
        if self.formatter is None:
            raise ConfigError("the exported tokenizer has no chat template: give prompts as token ids (generate_ids)")
        return self.generate_ids([self.formatter.prompt_ids(c) for c in conversations], streamer, record)

    def generate_ids(self, prompts: list[list[int]], streamer: Any = None,
                     record: list[torch.Tensor] | None = None) -> list[Generation]:
        """Answers to prompt token ids (virtual-token ids put in front), as the torch generator does."""
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
                     **dict(zip(self.cache_names, self._empty_cache(len(chunk)), strict=True))}
            logits = torch.from_numpy(self.session.run(["logits"], feeds)[0][..., : self.vocab_size].copy())
            shift = lab[:, 1:]
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), shift.reshape(-1),
                                                   ignore_index=-100, reduction="sum")
            total += float(ce)
            tokens += int(shift.ne(-100).sum())
        loss = total / max(tokens, 1)
        return {"test_loss": loss, "perplexity": float(np.exp(min(loss, 50.0)))}


def load_generator(path: str | Path, backend: str = "torch", device: str = "auto", max_new_tokens: int = 128,
                        int8: bool = False) -> Any:
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
        return ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens, loaded.config.data.max_length)
    export = open_export(path, backend, device)  # TensorRT checked before anything else: fails within seconds
    model_file = "model.int8.onnx" if int8 else "model.onnx"
    return OrtChatGenerator(export.export_dir, export.providers, max_new_tokens, model_file)
