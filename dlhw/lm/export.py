"""Causal-LM runs to ONNX: adapters merged, soft prompts folded, one decoder graph with KV cache.

Used by every family whose model is a causal LM saved as a :mod:`dlhw.lm.run` (chat, summarization).

| method | what is exported |
|---|---|
| lora, dora, rslora, loha | the adapter merged into the base weights (``merge_and_unload``) |
| partial | the fine-tuned model as it is |
| prompt tuning, P-tuning | the base with the learned virtual-token embeddings (for P-tuning, the prompt encoder's output, computed once) as extra embedding rows; inference prepends their ids |
| prefix tuning | the base; the learned prefix goes to ``prefix.npz`` and becomes the initial past key/values |

The graph is dlhw's own (:mod:`dlhw.lm.onnx`: ``torch.onnx``, KV cache, last-position logits at
prefill, external data past 2 GB); :func:`export_seq2seq` does the same for T5-style models. The run is loaded once: the
torch PEFT model first decodes the check prompts greedily (keeping every step's logits), then it
is merged or folded and exported. The parity check decodes the same prompts with ONNX Runtime;
the export fails if a single token differs or if the largest logit difference over all steps
exceeds the tolerance (``--atol``), and reports that difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def fold_soft_prompts(loaded: Any) -> tuple[Any, dict[str, Any], dict[str, np.ndarray] | None]:
    """An ordinary causal LM equivalent to the run's model, the folding metadata, and a prefix."""
    kind = loaded.info["method"]
    model = loaded.model
    if kind in ("partial", "full"):
        return model, {}, None
    if kind == "lora":
        return model.merge_and_unload(), {}, None
    base = model.get_base_model()
    vocab = base.get_input_embeddings().weight.shape[0]
    if kind in ("prompt-tuning", "p-tuning"):
        with torch.no_grad():
            virtual = model.get_prompt(batch_size=1)[0].detach()  # (n, H): for P-tuning, the encoder's output
            n = virtual.shape[0]
            base.resize_token_embeddings(vocab + n, mean_resizing=False)
            base.get_input_embeddings().weight[vocab:] = virtual.to(base.dtype)  # rows V..V+n-1
        return base, {"virtual_ids": list(range(vocab, vocab + n)), "vocab_size": vocab}, None
    with torch.no_grad():
        cache = model.get_prompt(batch_size=1)  # the learned prefix as key/values of n positions
    from dlhw.lm.onnx import cache_tensors

    flat = cache_tensors(cache) if hasattr(cache, "layers") else [t for kv in cache for t in kv[:2]]
    prefix = {}
    for i in range(len(flat) // 2):
        prefix[f"key_{i}"] = flat[2 * i][0].float().numpy()  # (kv_heads, n, head_dim)
        prefix[f"value_{i}"] = flat[2 * i + 1][0].float().numpy()
    return base, {"prefix_tokens": int(flat[0].shape[2])}, prefix


def export_causal_lm(loaded: Any, out_dir: Path, opset: int, family: str) -> dict[str, Any]:
    """Write ``model.onnx``, the tokenizer, ``chat.json`` (and ``prefix.npz``) into ``out_dir``."""
    from dlhw.lm.generate import stop_token_ids
    from dlhw.lm.ort import META_FILE

    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer)
    plain, folded, prefix = fold_soft_prompts(loaded)  # merges / folds in place: the reference is already taken
    meta = export_decoder(plain, loaded.tokenizer, out_dir, opset, loaded.config.data.max_length, stop_ids,
                          **folded)
    if prefix is not None:
        np.savez(out_dir / "prefix.npz", **prefix)  # type: ignore[arg-type]
    meta["method"] = loaded.info["method"]
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return {"family": family, "method": meta["method"], "opset": opset,
            "files": {"decoder": "model.onnx", **({"prefix": "prefix.npz"} if prefix is not None else {})}}


def export_decoder(plain: Any, tokenizer: Any, out_dir: Path, opset: int, max_length: int, stop_ids: list[int],
                   vocab_size: int | None = None, virtual_ids: list[int] | None = None,
                   prefix_tokens: int = 0) -> dict[str, Any]:
    """``model.onnx`` of a plain causal LM (:func:`dlhw.lm.onnx.export_decoder_graph`), its tokenizer,
    config and generation config, and ``chat.json``; returns ``chat.json``'s content."""
    from dlhw.lm.onnx import export_decoder_graph, kv_shape
    from dlhw.lm.ort import META_FILE

    plain = plain.float().eval()
    config = plain.config
    out_dir.mkdir(parents=True, exist_ok=True)
    export_decoder_graph(plain, out_dir / "model.onnx", opset)
    tokenizer.save_pretrained(out_dir)
    config.save_pretrained(out_dir)
    if getattr(plain, "generation_config", None) is not None:
        plain.generation_config.save_pretrained(out_dir)
    kv_heads, head_dim = kv_shape(config)
    meta = {
        "method": None,
        "vocab_size": vocab_size or config.vocab_size,
        "virtual_ids": virtual_ids or [],
        "prefix_tokens": prefix_tokens,
        "stop_ids": stop_ids,
        "pad_id": tokenizer.pad_token_id,
        "num_layers": config.num_hidden_layers,
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "max_length": max_length,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def export_seq2seq(model: Any, tokenizer: Any, out_dir: Path, opset: int) -> dict[str, str]:
    """The encoder and decoder graphs of a T5-style model (:func:`dlhw.lm.onnx.export_seq2seq_graphs`),
    its tokenizer, config and generation config; returns the graph file names."""
    from dlhw.lm.onnx import export_seq2seq_graphs

    model = model.float().eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = export_seq2seq_graphs(model, out_dir, opset)
    tokenizer.save_pretrained(out_dir)
    model.config.save_pretrained(out_dir)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out_dir)
    return files


SEQ2SEQ_PROFILE_LENGTH = 512
"""Longest source and decoded length a seq2seq TensorRT profile covers where the config names none (T5's
relative positions set no limit; 512 is the length it was pretrained at)."""


def build_seq2seq_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """TensorRT engines for ``encoder_model.onnx`` and ``decoder_model.onnx`` (batch 1..max_batch; source and
    decoded lengths up to the model's ``n_positions`` or :data:`SEQ2SEQ_PROFILE_LENGTH`, the cache from empty), one
    profile per graph."""
    from transformers import AutoConfig

    from dlhw.backends import open_session
    from dlhw.backends.tensorrt import shape_profiles, tensorrt_providers
    from dlhw.lm.onnx import cache_names

    config = AutoConfig.from_pretrained(out_dir)
    longest = int(getattr(config, "n_positions", None) or SEQ2SEQ_PROFILE_LENGTH)
    layers, heads, d = int(config.num_decoder_layers), int(config.num_heads), int(config.d_kv)
    cross: dict[str, list[int | str]] = {name: ["batch", heads, "source", d] for name in cache_names(layers, "cross")}
    encoder = shape_profiles({"input_ids": ["batch", "source"], "attention_mask": ["batch", "source"]}, max_batch,
                             longest, {"source": (1, longest // 2, longest)})
    decoder = shape_profiles(
        {"decoder_input_ids": ["batch", "new"], "encoder_attention_mask": ["batch", "source"],
         "encoder_hidden_states": ["batch", "source", int(config.d_model)], **cross,
         **{name: ["batch", heads, "past", d] for name in cache_names(layers)}},
        max_batch, longest, {"source": (1, longest // 2, longest), "new": (1, 1, longest),
                             "past": (0, longest // 2, longest)})
    settings: dict[str, Any] = {"fp16": fp16, "max_batch": max_batch}
    for graph, profile in (("encoder_model", encoder), ("decoder_model", decoder)):  # builds the engines
        open_session(out_dir / f"{graph}.onnx", tensorrt_providers(out_dir, {**settings, **profile}))
    return {**settings, "encoder_model": encoder, "decoder_model": decoder}


def build_decoder_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """TensorRT engines for ``model.onnx`` with profiles over batch, sequence and past lengths."""
    from dlhw.backends import open_session
    from dlhw.backends.tensorrt import shape_profiles, tensorrt_providers
    from dlhw.lm.ort import META_FILE

    chat = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    max_seq = chat["max_length"]
    kv, d = chat["num_kv_heads"], chat["head_dim"]
    shapes: dict[str, list[int | str]] = {
        "input_ids": ["batch", "sequence"], "attention_mask": ["batch", "total"],
        "position_ids": ["batch", "sequence"], "logits_index": ["sequence"],
        **{f"past_key_values.{i}.{kind}": ["batch", kv, "past", d]
           for i in range(chat["num_layers"]) for kind in ("key", "value")}}
    # new tokens: a whole prompt at most, one at the typical (decoding) step; the cache starts empty
    ranges = {"sequence": (1, 1, max_seq), "past": (0, max_seq // 2, max_seq), "total": (1, max_seq // 2 + 1, 2 * max_seq)}
    settings = {"fp16": fp16, **shape_profiles(shapes, max_batch, max_seq, ranges)}
    open_session(out_dir / "model.onnx", tensorrt_providers(out_dir, settings))  # builds the engines into the cache
    return settings
