"""Chat runs to ONNX: adapters merged, soft prompts folded, one decoder graph with KV cache.

| method | what is exported |
|---|---|
| lora, dora, rslora, loha | the adapter merged into the base weights (``merge_and_unload``) |
| partial | the fine-tuned model as it is |
| prompt tuning, P-tuning | the base with the learned virtual-token embeddings (for P-tuning, the prompt encoder's output, computed once) as extra embedding rows; inference prepends their ids |
| prefix tuning | the base; the learned prefix goes to ``prefix.npz`` and becomes the initial past key/values |

The graph comes from optimum-onnx (``text-generation-with-past``). The run is loaded once: the
torch PEFT model first decodes the check prompts greedily (keeping every step's logits), then it
is merged or folded and exported. The parity check decodes the same prompts with ONNX Runtime;
the export fails if a single token differs or if the largest logit difference over all steps
exceeds the tolerance (``--atol``), and reports that difference.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhw.errors import DlhwError

PARITY_PROMPTS = 12
PARITY_NEW_TOKENS = 24


@dataclass
class ChatExport:
    """A chat run loaded once for its whole export, with the torch reference decoded before the
    model is merged or folded."""

    run_dir: Path
    loaded: Any
    prompts: list[list[dict[str, str]]] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    """Greedy token ids of the torch PEFT model, per check prompt."""
    logits: list[Any] = field(default_factory=list)
    """(B, V) logits of every greedy step of the torch PEFT model."""


def load_for_export(run_dir: Path) -> ChatExport:
    """Load the run (once) and decode the check prompts with the torch PEFT model."""
    from dlhw.inference.chat import ChatGenerator
    from dlhw.models.chat_run import load_chat_run

    loaded = load_chat_run(run_dir, "cpu")
    job = ChatExport(run_dir, loaded, parity_prompts(loaded))
    generator = ChatGenerator(loaded.model, loaded.tokenizer, max_new_tokens=PARITY_NEW_TOKENS)
    job.tokens = [g.token_ids for g in generator.generate(job.prompts, record=job.logits)]
    return job


def _plain_model(loaded: Any) -> tuple[Any, dict[str, Any], dict[str, np.ndarray] | None]:
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
    legacy = cache.to_legacy_cache() if hasattr(cache, "to_legacy_cache") else cache
    prefix = {}
    for i, (key, value) in enumerate(legacy):
        prefix[f"key_{i}"] = key[0].float().numpy()  # (kv_heads, n, head_dim)
        prefix[f"value_{i}"] = value[0].float().numpy()
    return base, {"prefix_tokens": int(legacy[0][0].shape[2])}, prefix


def export_chat(job: ChatExport, out_dir: Path, opset: int) -> dict[str, Any]:
    """Write ``model.onnx``, the tokenizer, ``chat.json`` (and ``prefix.npz``) into ``out_dir``."""
    from dlhw.inference.chat import stop_token_ids
    from dlhw.inference.chat_ort import META_FILE

    loaded = job.loaded
    stop_ids = stop_token_ids(loaded.model, loaded.tokenizer)
    plain, folded, prefix = _plain_model(loaded)  # merges / folds in place: the reference is already taken
    meta = export_decoder(plain, loaded.tokenizer, out_dir, opset, loaded.config.data.max_length, stop_ids,
                          **folded)
    if prefix is not None:
        np.savez(out_dir / "prefix.npz", **prefix)  # type: ignore[arg-type]
    meta["method"] = loaded.info["method"]
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return {"family": "chat", "method": meta["method"], "opset": opset,
            "files": {"decoder": "model.onnx", **({"prefix": "prefix.npz"} if prefix is not None else {})}}


def export_decoder(plain: Any, tokenizer: Any, out_dir: Path, opset: int, max_length: int, stop_ids: list[int],
                   vocab_size: int | None = None, virtual_ids: list[int] | None = None,
                   prefix_tokens: int = 0) -> dict[str, Any]:
    """Export a plain causal LM with optimum-onnx and write ``chat.json``; return its content."""
    try:
        from optimum.exporters.onnx import main_export
    except ImportError:
        raise DlhwError("exporting chat models needs optimum-onnx: pip install optimum-onnx") from None
    from dlhw.inference.chat_ort import META_FILE

    plain = plain.float().eval()
    config = plain.config
    with tempfile.TemporaryDirectory() as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        main_export(tmp, output=out_dir, task="text-generation-with-past", opset=opset, device="cpu",
                    do_validation=False)
    meta = {
        "method": None,
        "vocab_size": vocab_size or config.vocab_size,
        "virtual_ids": virtual_ids or [],
        "prefix_tokens": prefix_tokens,
        "stop_ids": stop_ids,
        "pad_id": tokenizer.pad_token_id,
        "num_layers": config.num_hidden_layers,
        "num_kv_heads": config.num_key_value_heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
        "max_length": max_length,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def parity_prompts(loaded: Any) -> list[list[dict[str, str]]]:
    from dlhw.data.persian_tasks import PROBES, make_examples

    questions = [e.messages(with_answer=False) for e in make_examples(PARITY_PROMPTS - len(PROBES), loaded.config.seed + 7)]
    return [[{"role": "user", "content": p}] for p in PROBES] + questions


def check_chat_export(job: ChatExport, out_dir: Path, meta: dict[str, Any], atol: float) -> dict[str, Any]:
    """ORT's greedy tokens must equal the torch PEFT model's, prompt by prompt, and every step's
    logits must agree within ``atol``."""
    from dlhw.inference.chat_ort import OrtChatGenerator

    ort_logits: list[torch.Tensor] = []
    theirs = OrtChatGenerator(out_dir, max_new_tokens=PARITY_NEW_TOKENS).generate(job.prompts, record=ort_logits)
    differ = [i for i, (a, b) in enumerate(zip(job.tokens, theirs, strict=True)) if a != b.token_ids]
    if differ:
        i = differ[0]
        raise DlhwError(f"ONNX export differs from torch: greedy tokens of {len(differ)}/{len(job.prompts)} prompts "
                        f"differ (first: prompt {i}, torch {job.tokens[i][:8]} vs ORT {theirs[i].token_ids[:8]})")
    diff = max(float((a - b).abs().max()) for a, b in zip(job.logits, ort_logits, strict=True))
    if diff > atol:
        raise DlhwError(f"ONNX export differs from torch: largest logit difference {diff:.3g} over "
                        f"{len(job.logits)} greedy steps exceeds the tolerance {atol:g}; nothing was written")
    tokens = sum(len(t) for t in job.tokens)
    summary = (f"parity vs torch: max |diff| logits {diff:.2g} (tolerance {atol:g}); greedy tokens equal on "
               f"{len(job.prompts)}/{len(job.prompts)} prompts ({tokens} tokens)")
    return {"atol": atol, "prompts": len(job.prompts), "equal_prompts": len(job.prompts),
            "tokens_compared": tokens, "max_abs_diff": {"logits": diff}, "summary": summary}


def quantize_chat_export(job: ChatExport, out_dir: Path) -> dict[str, Any]:
    """``model.int8.onnx`` (dynamic int8 weights) and the test perplexity before and after."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from dlhw.data.chat import prepare_conversations
    from dlhw.data.chat_format import ChatFormatter
    from dlhw.inference.chat_ort import OrtChatGenerator

    quantize_dynamic(str(out_dir / "model.onnx"), str(out_dir / "model.int8.onnx"), weight_type=QuantType.QInt8)
    loaded = job.loaded
    splits = prepare_conversations(loaded.config.data, loaded.config.seed)
    test = ChatFormatter(loaded.tokenizer, loaded.config.data.max_length).encode_all(splits.test)
    fp32 = OrtChatGenerator(out_dir).loss(test)
    int8 = OrtChatGenerator(out_dir, model_file="model.int8.onnx").loss(test)
    sizes = {f: (out_dir / f).stat().st_size for f in ("model.onnx", "model.int8.onnx")}
    change = 100 * (int8["perplexity"] - fp32["perplexity"]) / fp32["perplexity"]
    summary = (f"int8: model.int8.onnx ({sizes['model.int8.onnx'] / 2**20:.1f} MiB, fp32 "
               f"{sizes['model.onnx'] / 2**20:.1f} MiB); test perplexity {fp32['perplexity']:.3f} -> "
               f"{int8['perplexity']:.3f} ({change:+.2f}%)")
    return {"file": "model.int8.onnx", "test_perplexity_fp32": fp32["perplexity"],
            "test_perplexity_int8": int8["perplexity"], "perplexity_change_percent": change,
            "bytes_fp32": sizes["model.onnx"], "bytes_int8": sizes["model.int8.onnx"], "summary": summary}


def build_chat_engines(out_dir: Path, meta: dict[str, Any], fp16: bool, max_batch: int) -> dict[str, Any]:
    """TensorRT engines for ``model.onnx`` with profiles over batch, sequence and past lengths."""
    import onnxruntime as ort

    from dlhw.inference.tensorrt import tensorrt_providers

    chat = json.loads((out_dir / "chat.json").read_text(encoding="utf-8"))
    max_seq = chat["max_length"]
    kv, d = chat["num_kv_heads"], chat["head_dim"]

    def shapes(batch: int, seq: int, past: int) -> str:
        parts = [f"input_ids:{batch}x{seq}", f"attention_mask:{batch}x{seq + past}", f"position_ids:{batch}x{seq}"]
        for i in range(chat["num_layers"]):
            parts += [f"past_key_values.{i}.key:{batch}x{kv}x{past}x{d}", f"past_key_values.{i}.value:{batch}x{kv}x{past}x{d}"]
        return ",".join(parts)

    settings = {"fp16": fp16, "trt_profile_min_shapes": shapes(1, 1, 0),
                "trt_profile_opt_shapes": shapes(max(1, max_batch // 2), 1, max_seq // 2),
                "trt_profile_max_shapes": shapes(max_batch, max_seq, max_seq)}
    ort.InferenceSession(str(out_dir / "model.onnx"), providers=tensorrt_providers(out_dir, settings))
    return settings
