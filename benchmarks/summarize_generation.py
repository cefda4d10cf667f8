"""Summarizing articles: the seed's one-at-a-time ``generate`` loop vs dlhw's batched generation (torch)
vs dlhw's ONNX export on ONNX Runtime vs ONNX Runtime GenAI's builder graph (a peer).

A SmolLM2-360M-shaped Llama (hidden 960, 32 layers, 15 heads, 5 KV heads, MLP 2560, vocabulary 49,152;
362M parameters, fp32) with random weights -- built from a config, nothing downloaded -- and a small
BPE tokenizer trained on the embedded English text. The embedded news articles are put in dlhw's plain
summarization prompt (:class:`dlhw.families.summarization.data.PromptBuilder`) and summarized greedily with a
fixed number of new tokens (random weights never emit EOS, so every path does the same work):

1. the seed's loop: ``model.generate(ids, max_new_tokens=N, do_sample=False)``, one article at a time;
2. dlhw, torch: ``ChatGenerator`` (the generator behind ``Summarizer``: length-sorted batches of
   ``--batch``, left padding, KV cache, last-position logits at prefill);
3. dlhw, ONNX Runtime: the same on dlhw's own export (:func:`dlhw.lm.export.export_decoder`,
   ``OrtChatGenerator``);
4. ONNX Runtime GenAI, where ``onnxruntime-genai`` (and ``onnx-ir``, which its builder needs) import:
   its model builder's fp32 CPU graph of the same weights, the same length-sorted batches, right-padded
   (it reads left padding wrongly), greedy. A peer to compare with, never a dependency of dlhw
   (``pip install 'dlhw[bench]'``).

Prints seconds, tokens/s and the ratios, and checks that the greedy tokens are equal to the seed's.

    python benchmarks/summarize_generation.py [--articles 32] [--new-tokens 48] [--batch 16] [--layers 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from genai_peer import build_genai, genai_available, genai_batched  # noqa: E402

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.families.summarization.data import PromptBuilder  # noqa: E402
from dlhw.families.summarization.summary_tasks import make_articles, plain_text  # noqa: E402
from dlhw.lm.export import export_decoder  # noqa: E402
from dlhw.lm.generate import ChatGenerator  # noqa: E402
from dlhw.lm.ort import OrtChatGenerator  # noqa: E402
from dlhw.lm.tiny import train_tiny_tokenizer  # noqa: E402


def smollm2_360m_shaped(tokenizer, layers: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=layers, num_attention_heads=15,
        num_key_value_heads=5, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def seed_loop(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """The seed's way: one ``generate`` call per article, greedy (no padding, no batching)."""
    out = []
    for ids in prompts:
        x = torch.tensor([ids])
        y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=0)
        out.append(y[0, len(ids):].tolist())
    return out


def batched(generator, prompts: list[list[int]], batch: int) -> list[list[int]]:
    generator.batch_size = batch  # length-sorted batches, answers in input order
    return [g.token_ids for g in generator.generate_ids(prompts)]


def timed(fn, *args) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    tokens = fn(*args)
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (32 = SmolLM2-360M)")
    parser.add_argument("--no-ort", action="store_true")
    parser.add_argument("--no-genai", action="store_true", help="leave out ONNX Runtime GenAI (the peer)")
    args = parser.parse_args()
    tokenizer = train_tiny_tokenizer(plain_text(1000), 768)
    model = smollm2_360m_shaped(tokenizer, args.layers)
    params = sum(p.numel() for p in model.parameters())
    builder = PromptBuilder(tokenizer, "article", "plain", 512, 1024, args.new_tokens)
    prompts = [builder.prompt(a.document).ids for a in make_articles(args.articles, seed=5)]
    torch_gen = ChatGenerator(model, tokenizer, max_new_tokens=args.new_tokens)
    torch_gen.stop_ids = [-1]  # random weights: always the full length
    with torch.inference_mode():
        seed_loop(model, prompts[:1], 2)  # warm-up
        loop_s, loop_tokens = timed(seed_loop, model, prompts, args.new_tokens)
        batch_s, batch_tokens = timed(batched, torch_gen, prompts, args.batch)
    rows = [("seed: generate(), one article at a time", loop_s, loop_tokens),
            (f"dlhw torch, batch {args.batch}", batch_s, batch_tokens)]
    export_s = 0.0
    if not args.no_ort:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            export_decoder(model, tokenizer, Path(tmp), 18, 1024, [-1])
            export_s = time.perf_counter() - start
            ort_gen = OrtChatGenerator(Path(tmp), max_new_tokens=args.new_tokens)
            ort_gen.stop_ids = [-1]
            batched(ort_gen, prompts[:2], 2)  # warm-up
            ort_s, ort_tokens = timed(batched, ort_gen, prompts, args.batch)
        rows.append((f"dlhw onnxruntime + KV cache, batch {args.batch}", ort_s, ort_tokens))
    if not args.no_genai and genai_available():
        import onnxruntime_genai as og

        with tempfile.TemporaryDirectory() as tmp:
            genai = og.Model(str(build_genai(model, tokenizer, Path(tmp))))
            genai_batched(genai, prompts[:2], 2, 2, tokenizer.pad_token_id)  # warm-up
            genai_s, genai_tokens = timed(genai_batched, genai, prompts, args.batch, args.new_tokens,
                                          tokenizer.pad_token_id)
        rows.append((f"onnxruntime-genai fp32 (peer), batch {args.batch}", genai_s, genai_tokens))
    total = args.articles * args.new_tokens
    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} threads; torch {torch.__version__}")
    print(f"SmolLM2-360M-shaped Llama, {args.layers} layers, {params / 1e6:.0f}M parameters, random weights, fp32; "
          f"{args.articles} articles of {min(map(len, prompts))}-{max(map(len, prompts))} prompt tokens, "
          f"{args.new_tokens} new tokens each" + (f"; ONNX export {export_s:.0f} s" if export_s else ""))
    print(f"{'':48} {'seconds':>8} {'tokens/s':>9} {'vs seed':>8} {'tokens equal':>13}")
    for name, secs, tokens in rows:
        equal = sum(a == b for a, b in zip(loop_tokens, tokens, strict=True))
        print(f"{name:48} {secs:8.2f} {total / secs:9.1f} {loop_s / secs:7.2f}x {equal:>8}/{len(prompts)}")
    seconds = {name.split(",")[0]: secs for name, secs, _ in rows}
    if "dlhw onnxruntime + KV cache" in seconds and "onnxruntime-genai fp32 (peer)" in seconds:
        print(f"dlhw onnxruntime vs onnxruntime-genai: "
              f"{seconds['onnxruntime-genai fp32 (peer)'] / seconds['dlhw onnxruntime + KV cache']:.2f}x")


if __name__ == "__main__":
    main()
