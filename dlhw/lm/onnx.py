"""dlhw's own ONNX graphs of language models, with a KV cache, through ``torch.onnx``.

Decoder-only (Llama, SmolLM2, Gemma-2, StableLM, ... any ``AutoModelForCausalLM`` whose cache is a
``DynamicCache``) -- one graph, ``model.onnx``:

| inputs | outputs |
|---|---|
| ``input_ids`` (B, T), ``attention_mask`` (B, P + T), ``position_ids`` (B, T) | ``logits`` (B, K, V) |
| ``logits_index`` (K,): the positions of the T whose logits are computed | ``present.{i}.key/value`` (B, kv, P + T, d) |
| ``past_key_values.{i}.key/value`` (B, kv, P, d); P = 0 at the first step | |

``logits_index`` is what keeps prefill cheap: generation asks for the last position only (K = 1),
so the output layer (49,152 x 960 in SmolLM2) runs once per row instead of once per prompt token;
a loss asks for every position (``arange(T)``). Every layer's cache is a full (not sliding) one:
sliding-window models (Gemma-2) get their window from the attention mask, which the model builds
from its config, so the graph's cache grows like any other and equals the model's own output.

Seq2seq (T5) -- two graphs, the encoder run once per prompt:

| graph | inputs | outputs |
|---|---|---|
| ``encoder_model.onnx`` | ``input_ids``, ``attention_mask`` (B, S) | ``last_hidden_state`` (B, S, H), ``cross.{i}.key/value`` (B, h, S, d) |
| ``decoder_model.onnx`` | ``decoder_input_ids`` (B, T), ``encoder_attention_mask`` (B, S), ``encoder_hidden_states``, ``cross.{i}.key/value``, ``past_key_values.{i}.key/value`` (B, h, P, d) | ``logits`` (B, T, V), ``present.{i}.key/value`` |

The cross-attention keys and values are projected once, in the encoder graph, and the decoder graph
only reads them: a decoding step costs no work that depends on the prompt's length beyond attention.

Graphs are traced in fp32 with ``torch.onnx.export`` (the TorchScript exporter, dynamic batch,
sequence and past axes). A graph whose weights exceed :data:`dlhw.backends.quantize.EXTERNAL_DATA_BYTES`
is saved with its weights in ``<name>.data`` beside it (ONNX's protobuf limit is 2 GB), and its int8
copy likewise.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

DECODER_INPUTS = ("input_ids", "attention_mask", "position_ids", "logits_index")
SEQ2SEQ_DECODER_INPUTS = ("decoder_input_ids", "encoder_attention_mask", "encoder_hidden_states")


def cache_argument(model: Any) -> str:
    """The keyword a model's ``forward`` takes its cache by: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (earlier releases, still accepted with a deprecation warning until 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(out: Any) -> Any:
    """The cache a model's output carries (``cache`` or ``past_key_values``, by release)."""
    cache = out.get("cache") if hasattr(out, "get") else None
    return cache if cache is not None else out.past_key_values


def cache_tensors(cache: Any) -> list[Tensor]:
    """``[key_0, value_0, key_1, ...]`` of a ``DynamicCache`` (each (B, kv, P, d))."""
    flat: list[Tensor] = []
    for layer in cache.layers:
        flat += [layer.keys, layer.values]
    return flat


def filled_cache(tensors: tuple[Tensor, ...] | list[Tensor]) -> Any:
    """A ``DynamicCache`` of full layers holding ``[key_0, value_0, ...]``."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    for i in range(len(tensors) // 2):
        cache.update(tensors[2 * i], tensors[2 * i + 1], i)
    return cache


def cache_names(layers: int, prefix: str = "past_key_values") -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def kv_shape(config: Any) -> tuple[int, int]:
    """``(kv heads, head dim)`` of a decoder config."""
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    return kv, getattr(config, "head_dim", None) or config.hidden_size // heads


class DecoderGraph(nn.Module):
    """A causal LM as a function of flat tensors: the traced module of ``model.onnx``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.cache_kw = cache_argument(model)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, logits_index: Tensor,
                *past: Tensor) -> tuple[Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, logits_to_keep=logits_index, **{self.cache_kw: filled_cache(past)})
        return (out.logits, *cache_tensors(returned_cache(out)))  # (B, K, V), 2L x (B, kv, P + T, d)


class Seq2SeqEncoderGraph(nn.Module):
    """Prompt -> encoder states and every decoder layer's cross-attention keys and values."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return (hidden, *cross_projections(self.model, hidden))  # (B, S, H), 2L x (B, h, S, d)


def cross_projections(model: Any, hidden: Tensor) -> list[Tensor]:
    """The decoder's cross-attention keys/values of encoder states ``hidden`` (B, S, H), per layer."""
    flat: list[Tensor] = []
    batch, length = hidden.shape[:2]
    for block in model.get_decoder().block:
        attention = block.layer[1].EncDecAttention
        for proj in (attention.k, attention.v):
            flat.append(proj(hidden).view(batch, length, -1, attention.key_value_proj_dim).transpose(1, 2))
    return flat


class Seq2SeqDecoderGraph(nn.Module):
    """Decoder steps over the encoder's states with precomputed cross keys/values and a self cache."""

    def __init__(self, model: nn.Module, layers: int):
        super().__init__()
        self.model = model
        self.layers = layers
        self.cache_kw = cache_argument(model)

    def forward(self, decoder_input_ids: Tensor, encoder_attention_mask: Tensor, encoder_hidden_states: Tensor,
                *caches: Tensor) -> tuple[Tensor, ...]:
        from transformers.cache_utils import EncoderDecoderCache
        from transformers.modeling_outputs import BaseModelOutput

        n = 2 * self.layers
        cross, past = caches[:n], caches[n:]
        cache = EncoderDecoderCache(filled_cache(past), filled_cache(cross))
        for i in range(self.layers):
            cache.is_updated[i] = True  # cross keys/values given: never recomputed from the states
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
                         attention_mask=encoder_attention_mask, decoder_input_ids=decoder_input_ids,
                         use_cache=True, **{self.cache_kw: cache})
        return (out.logits, *cache_tensors(returned_cache(out).self_attention_cache))


EXPORT_ATTENTION = "dlhw_grouped"
"""The attention the decoder graph is traced with (:func:`grouped_attention`)."""


def grouped_attention(module: nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                      dropout: float = 0.0, scaling: float | None = None, softcap: float | None = None,
                      **kwargs: Any) -> tuple[Tensor, None]:
    """Attention with grouped key/value heads, never copying the keys and values per query head.

    The query heads sharing a key/value head are stacked along the sequence axis, so one matrix
    product per key/value head serves the whole group (``repeat_kv`` would expand the cache
    ``heads / kv_heads`` times at every step). Same result as the model's eager attention: scale,
    optional tanh soft-capping (Gemma-2), the additive mask, softmax in fp32.
    """
    batch, heads, length, dim = query.shape  # (B, H, T, d)
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    q = query.reshape(batch, kv_heads, groups * length, dim)  # (B, kv, g*T, d): head kv_i * g + j
    scores = torch.matmul(q, key.transpose(2, 3)) * (dim ** -0.5 if scaling is None else scaling)  # (B, kv, g*T, S)
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.view(batch, kv_heads, groups, length, -1)  # (B, kv, g, T, S)
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None, :, : key.shape[2]]  # (B, 1, 1, T, S)
    probs = torch.softmax(scores.float(), dim=-1).to(query.dtype).view(batch, kv_heads, groups * length, -1)
    out = torch.matmul(probs, value)  # (B, kv, g*T, d)
    return out.view(batch, heads, length, dim).transpose(1, 2).contiguous(), None  # (B, T, H, d)


@contextmanager
def traced_attention(model: Any) -> Iterator[None]:
    """``model`` runs :func:`grouped_attention` (with eager's additive masks) inside the block; models
    that cannot switch their attention keep their own."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(EXPORT_ATTENTION, grouped_attention)
    AttentionMaskInterface.register(EXPORT_ATTENTION, eager_mask)
    before = model.config._attn_implementation
    switch = getattr(model, "_can_set_attn_implementation", lambda: False)()
    if switch:
        model.set_attn_implementation(EXPORT_ATTENTION)
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def _axes(names: list[str], axes: dict[int, str]) -> dict[str, dict[int, str]]:
    return {name: dict(axes) for name in names}


def _export(module: nn.Module, args: tuple[Tensor, ...], path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]], opset: int) -> None:
    """Trace ``module`` to ``path``; weights over ``EXTERNAL_DATA_BYTES`` go to ``path.name + '.data'``."""
    import tempfile

    import onnx

    from dlhw.backends import quantize

    def trace(target: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic that the graph keeps dynamic
            torch.onnx.export(module, args, str(target), input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)

    size = sum(p.numel() * p.element_size() for p in module.parameters())
    if size <= quantize.EXTERNAL_DATA_BYTES:
        trace(path)
        return
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:  # the tracer may write one file per tensor
        trace(Path(tmp) / path.name)
        graph = onnx.load(str(Path(tmp) / path.name), load_external_data=True)
    onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{path.name}.data", size_threshold=1024)


def export_decoder_graph(model: Any, path: Path, opset: int) -> None:
    """``model.onnx`` of a causal LM (fp32, traced on a batch of 2, 3 new tokens over 2 past)."""
    config = model.config
    layers = config.num_hidden_layers
    kv, d = kv_shape(config)
    batch, new, past_len = 2, 3, 2
    ids = torch.randint(0, min(config.vocab_size, 100), (batch, new))  # (B, T)
    mask = torch.ones((batch, past_len + new), dtype=torch.long)  # (B, P + T)
    positions = torch.arange(past_len, past_len + new).repeat(batch, 1)  # (B, T)
    index = torch.tensor([new - 1])  # (K,)
    past = [torch.zeros((batch, kv, past_len, d)) for _ in range(2 * layers)]  # 2L x (B, kv, P, d)
    pasts, presents = cache_names(layers), cache_names(layers, "present")
    axes = {"input_ids": {0: "batch", 1: "new"}, "attention_mask": {0: "batch", 1: "total"},
            "position_ids": {0: "batch", 1: "new"}, "logits_index": {0: "kept"}, "logits": {0: "batch", 1: "kept"},
            **_axes(pasts, {0: "batch", 2: "past"}), **_axes(presents, {0: "batch", 2: "total"})}
    with traced_attention(model):
        _export(DecoderGraph(model), (ids, mask, positions, index, *past), path,
                [*DECODER_INPUTS, *pasts], ["logits", *presents], axes, opset)


def export_seq2seq_graphs(model: Any, out_dir: Path, opset: int) -> dict[str, str]:
    """``encoder_model.onnx`` and ``decoder_model.onnx`` of a T5-style model; returns the file names."""
    config = model.config
    layers = config.num_decoder_layers
    heads, d = config.num_heads, config.d_kv
    batch, source, past_len = 2, 5, 2
    ids = torch.randint(2, min(config.vocab_size, 100), (batch, source))  # (B, S)
    mask = torch.ones((batch, source), dtype=torch.long)  # (B, S)
    cross_names = cache_names(layers, "cross")
    _export(Seq2SeqEncoderGraph(model), (ids, mask), out_dir / "encoder_model.onnx", ["input_ids", "attention_mask"],
            ["last_hidden_state", *cross_names],
            {"input_ids": {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"},
             "last_hidden_state": {0: "batch", 1: "source"}, **_axes(cross_names, {0: "batch", 2: "source"})}, opset)
    with torch.no_grad():
        hidden, *cross = Seq2SeqEncoderGraph(model)(ids, mask)
    step = torch.full((batch, 1), config.decoder_start_token_id)  # (B, T)
    past = [torch.zeros((batch, heads, past_len, d)) for _ in range(2 * layers)]
    pasts, presents = cache_names(layers), cache_names(layers, "present")
    axes = {"decoder_input_ids": {0: "batch", 1: "new"}, "encoder_attention_mask": {0: "batch", 1: "source"},
            "encoder_hidden_states": {0: "batch", 1: "source"}, "logits": {0: "batch", 1: "new"},
            **_axes(cross_names, {0: "batch", 2: "source"}), **_axes(pasts, {0: "batch", 2: "past"}),
            **_axes(presents, {0: "batch", 2: "total"})}
    _export(Seq2SeqDecoderGraph(model, layers), (step, mask, hidden, *cross, *past), out_dir / "decoder_model.onnx",
            [*SEQ2SEQ_DECODER_INPUTS, *cross_names, *pasts], ["logits", *presents], axes, opset)
    return {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx"}
