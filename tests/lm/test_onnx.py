"""dlhw's own language-model ONNX export (lm/onnx.py) and the runtime around it (lm/ort.py, lm/generate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from dlhw.errors import ConfigError
from dlhw.lm.generate import ChatGenerator, in_length_order
from dlhw.lm.tiny import train_tiny_tokenizer

PROMPTS = [[5, 6, 7, 8, 9, 10, 11, 12, 13], [20, 21], [30, 31, 32, 33, 34], [40, 41, 42, 43, 44, 45, 46], [50]]


def _tokenizer():
    return train_tiny_tokenizer(["one two three four five six seven eight nine ten"] * 40, 300)


def _decoder(kind: str, tokenizer):
    """A tiny decoder of each architecture the export supports, with weights wide enough to vary."""
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"gemma2": {"head_dim": 8, "sliding_window": 4, "query_pre_attn_scalar": 8},  # window < prompt
             "stablelm": {"partial_rotary_factor": 0.25}}.get(kind, {})
    config = AutoConfig.for_model(kind, vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **extra)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # random chains of many different tokens
    return model


def _export(model, tokenizer, out: Path):
    from dlhw.lm.export import export_decoder

    export_decoder(model, tokenizer, out, 18, 256, [-1])  # no stop id: every row runs its full length
    return out


def _greedy(generator, prompts=PROMPTS, new=10) -> list[list[int]]:
    generator.max_new_tokens = new
    generator.stop_ids = [-1]
    return [g.token_ids for g in generator.generate_ids(prompts)]


@pytest.mark.parametrize("kind", ["llama", "gemma2", "stablelm"])
def test_decoder_export_decodes_the_torch_tokens_and_computes_last_position_logits_at_prefill(kind, tmp_path):
    from dlhw.lm.ort import OrtChatGenerator

    tokenizer = _tokenizer()
    model = _decoder(kind, tokenizer)
    theirs = _greedy(ChatGenerator(model, tokenizer))
    out = _export(model, tokenizer, tmp_path / "export")
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False)
    assert [i.name for i in graph.graph.input][:4] == ["input_ids", "attention_mask", "position_ids", "logits_index"]
    assert model.config._attn_implementation != "dlhw_grouped"  # the export's attention was switched back
    ours = OrtChatGenerator(out)
    assert _greedy(ours) == theirs and len({tuple(r) for r in theirs}) == len(PROMPTS)

    # prefill: K = 1 logits row per prompt however long it is; the values are torch's last-position logits
    ids = torch.tensor([PROMPTS[0]])
    feeds = {"input_ids": ids.numpy(), "attention_mask": np.ones_like(ids.numpy()),
             "position_ids": np.arange(ids.shape[1])[None], "logits_index": np.array([ids.shape[1] - 1]),
             **dict(zip(ours.cache_names, ours._empty_cache(1), strict=True))}
    logits = ours.session.run(["logits"], feeds)[0]  # (1, 1, V)
    with torch.no_grad():
        reference = model(ids).logits[:, -1:]  # (1, 1, V)
    assert logits.shape == (1, 1, len(tokenizer))
    assert np.abs(logits - reference.numpy()).max() < 1e-4


def test_loss_asks_the_graph_for_every_position_and_matches_torch(tmp_path):
    from dlhw.lm.ort import OrtChatGenerator

    tokenizer = _tokenizer()
    model = _decoder("llama", tokenizer)
    out = _export(model, tokenizer, tmp_path / "export")
    items = [{"input_ids": p + [7, 8], "labels": [-100] * len(p) + [7, 8]} for p in PROMPTS]
    ours = OrtChatGenerator(out).loss(items, batch_size=2)
    total, count = 0.0, 0
    with torch.no_grad():
        for it in items:  # one row at a time: no padding
            logits = model(torch.tensor([it["input_ids"]])).logits[0, :-1]
            target = torch.tensor(it["labels"][1:])
            total += float(torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="sum"))
            count += int(target.ne(-100).sum())
    assert ours["test_loss"] == pytest.approx(total / count, rel=1e-4)


def test_io_binding_keeps_the_cache_as_ort_values_and_decodes_the_same_tokens(tmp_path):
    from dlhw.lm.ort import OrtChatGenerator

    tokenizer = _tokenizer()
    out = _export(_decoder("llama", tokenizer), tokenizer, tmp_path / "export")
    plain = OrtChatGenerator(out)
    bound = OrtChatGenerator(out, io_binding=True)  # on the CPU here; on CUDA the same path keeps it on the GPU
    import onnxruntime as ort

    _, cache = bound.forward_fn()({"input_ids": torch.tensor([[5, 6]])}, torch.ones((1, 2), dtype=torch.long),
                                  torch.tensor([[0, 1]]), bound._empty_cache(1))
    assert all(isinstance(c, ort.OrtValue) for c in cache) and cache[0].shape() == [1, 2, 2, 8]
    assert _greedy(bound) == _greedy(plain)


def test_large_graphs_keep_their_weights_in_one_external_data_file_also_in_int8(tmp_path, monkeypatch):
    from dlhw.backends import quantize
    from dlhw.lm.ort import OrtChatGenerator

    tokenizer = _tokenizer()
    model = _decoder("llama", tokenizer)
    small = _greedy(OrtChatGenerator(_export(model, tokenizer, tmp_path / "small")))
    monkeypatch.setattr(quantize, "EXTERNAL_DATA_BYTES", 1000)  # as a model over 2 GB would be
    out = _export(model, tokenizer, tmp_path / "large")
    assert (out / "model.onnx.data").stat().st_size > 100_000
    assert (out / "model.onnx").stat().st_size < 200_000  # the graph without its weights
    assert sorted(p.name for p in out.iterdir() if "onnx" in p.name) == ["model.onnx", "model.onnx.data"]
    assert _greedy(OrtChatGenerator(out)) == small

    quantize.quantize_int8(out / "model.onnx", out / "model.int8.onnx")
    int8_graph = onnx.load(str(out / "model.int8.onnx"), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in int8_graph.graph.initializer)
    assert sorted(p.name for p in out.iterdir() if "int8" in p.name) == ["model.int8.onnx", "model.int8.onnx.data"]
    int8 = OrtChatGenerator(out, model_file="model.int8.onnx")
    assert len(_greedy(int8)) == len(PROMPTS)  # ONNX Runtime loads the graph and its data file and decodes


def test_t5_graphs_project_cross_attention_once_and_decode_the_torch_tokens(tmp_path):
    from dlhw.lm.export import export_seq2seq
    from dlhw.lm.generate import seq2seq_loop
    from dlhw.lm.ort import OrtSeq2Seq
    from tests.lm.test_generate import _t5_batch, _tiny_t5

    model = _tiny_t5()
    ids, mask = _t5_batch()
    theirs = seq2seq_loop(model, ids, mask, 20, [1], 0)
    tokenizer = _tokenizer()
    files = export_seq2seq(model, tokenizer, tmp_path, 18)
    assert files == {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx"}
    ours = OrtSeq2Seq(tmp_path)
    assert seq2seq_loop(ours, ids, mask, 20, [1], 0) == theirs
    bound = OrtSeq2Seq(tmp_path, io_binding=True)  # encoder states and caches kept as OrtValues between steps
    twice = seq2seq_loop(bound, ids, mask, 20, [1], 0, repeat=2)
    assert twice == [row for row in theirs for _ in range(2)]  # each prompt's states repeated, decoded twice
    # the decoder graph reads the cross keys/values and holds no cross-attention projection of its own
    decoder = onnx.load(str(tmp_path / "decoder_model.onnx"), load_external_data=False)
    assert not [n for n in decoder.graph.node if "EncDecAttention/k" in n.name or "EncDecAttention/v" in n.name]
    # teacher forcing equals model(labels=...) (the prompting family's label ranking)
    labels = torch.tensor([[5, 6, 7]] * ids.shape[0])
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    assert (ours.teacher_logits(ids, mask, labels) - reference).abs().max() < 1e-3  # logits of size ~20
    assert json.loads((tmp_path / "config.json").read_text())["num_decoder_layers"] == 2


def test_length_sorted_batches_return_results_in_input_order_with_less_padding():
    seen: list[list[int]] = []

    def run(batch: list[list[int]]) -> list[int]:
        seen.append([len(p) for p in batch])
        return [p[0] for p in batch]

    assert in_length_order(PROMPTS, 2, run) == [p[0] for p in PROMPTS]
    assert seen == [[9, 7], [5, 2], [1]]  # longest first, neighbours in length
    seen.clear()
    assert in_length_order(PROMPTS, None, run) == [p[0] for p in PROMPTS] and len(seen) == 1


def test_sorted_batches_and_a_static_cache_decode_the_tokens_of_one_batch():
    tokenizer = _tokenizer()
    for kind in ("llama", "gemma2"):
        model = _decoder(kind, tokenizer)
        reference = _greedy(ChatGenerator(model, tokenizer))
        assert _greedy(ChatGenerator(model, tokenizer, batch_size=2)) == reference
        assert _greedy(ChatGenerator(model, tokenizer, static_cache=True)) == reference


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_compile_is_refused_on_the_cpu_with_one_line(tmp_path):
    from tests.conftest import run_cli

    tokenizer = _tokenizer()
    with pytest.raises(ConfigError, match="runs on a CUDA GPU"):
        ChatGenerator(_decoder("llama", tokenizer), tokenizer, compile=True)
    code, out = run_cli("chat", "--model", str(tmp_path), "--prompts", "p.txt", "--out", "a.jsonl", "--compile")
    assert code == 2 and "static cache + torch.compile (CUDA graphs) runs on a CUDA GPU" in out


@pytest.mark.gpu
def test_compiled_static_cache_decodes_the_eager_tokens_on_cuda():
    tokenizer = _tokenizer()
    model = _decoder("llama", tokenizer).cuda()
    eager = _greedy(ChatGenerator(model, tokenizer))
    assert _greedy(ChatGenerator(model, tokenizer, compile=True)) == eager


@pytest.mark.gpu
def test_onnxruntime_on_cuda_binds_the_cache_to_the_gpu(tmp_path):
    import onnxruntime as ort

    from dlhw.lm.ort import OrtChatGenerator

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
    tokenizer = _tokenizer()
    out = _export(_decoder("llama", tokenizer), tokenizer, tmp_path / "export")
    gpu = OrtChatGenerator(out, ["CUDAExecutionProvider"])
    assert gpu.runner.io_binding and gpu.runner.device[0] == "cuda"
    assert _greedy(gpu) == _greedy(OrtChatGenerator(out))


def test_t5_tensorrt_profiles_cover_both_graphs_and_the_runner_asks_each_graph_for_its_own(tmp_path, monkeypatch):
    from dlhw.backends.session import TENSORRT, ExportHandle
    from dlhw.backends.tensorrt import graph_input_shapes
    from dlhw.lm.export import SEQ2SEQ_PROFILE_LENGTH, build_seq2seq_engines, export_seq2seq
    from tests.lm.test_generate import _tiny_t5

    model = _tiny_t5()
    export_seq2seq(model, _tokenizer(), tmp_path, 18)
    built: dict[str, list] = {}
    monkeypatch.setattr("dlhw.backends.open_session", lambda path, providers, *_: built.setdefault(path.name, providers))
    settings = build_seq2seq_engines(tmp_path, {}, fp16=False, max_batch=4)
    assert sorted(built) == ["decoder_model.onnx", "encoder_model.onnx"]
    longest = getattr(model.config, "n_positions", None) or SEQ2SEQ_PROFILE_LENGTH
    for graph in ("encoder_model", "decoder_model"):
        dynamic = {k for k, v in graph_input_shapes(tmp_path / f"{graph}.onnx").items() if any(isinstance(d, str) for d in v)}
        shapes = {kind: dict(e.split(":") for e in settings[graph][f"trt_profile_{kind}_shapes"].split(","))
                  for kind in ("min", "opt", "max")}
        assert set(shapes["min"]) == set(shapes["max"]) == dynamic
        assert built[f"{graph}.onnx"][0][1]["trt_profile_max_shapes"] == settings[graph]["trt_profile_max_shapes"]
    decoder = {kind: dict(e.split(":") for e in settings["decoder_model"][f"trt_profile_{kind}_shapes"].split(","))
               for kind in ("min", "max")}
    heads, d = model.config.num_heads, model.config.d_kv
    assert decoder["min"]["past_key_values.0.key"] == f"1x{heads}x0x{d}"  # batch 1, the cache empty
    assert decoder["max"]["past_key_values.0.key"] == f"4x{heads}x{longest}x{d}"
    assert decoder["max"]["cross.0.key"] == f"4x{heads}x{longest}x{d}"

    # OrtSeq2Seq opens each graph with that graph's profile (what a TensorRT run of the export does)
    handle = ExportHandle(tmp_path, {"tensorrt": settings}, [(TENSORRT, {}), "CPUExecutionProvider"])
    monkeypatch.setattr("dlhw.lm.ort.open_session", lambda path, providers, *_: built.__setitem__(path.name, providers))
    monkeypatch.setattr("dlhw.lm.ort.GraphRunner", lambda session, io_binding=None: session)
    from dlhw.lm.ort import OrtSeq2Seq

    OrtSeq2Seq(tmp_path, providers_for=handle.providers_for)
    for graph in ("encoder_model", "decoder_model"):
        assert built[f"{graph}.onnx"][0][1]["trt_profile_min_shapes"] == settings[graph]["trt_profile_min_shapes"]
