"""Prompting throughput: self-consistency with encoder reuse vs independent ``generate`` calls, and
batched length-sorted answer-only vs one item at a time.

A T5 with FLAN-T5-large's shape (24 + 24 layers, d_model 1024, d_ff 2816 gated-GELU, 16 heads,
32128 tokens; random weights: throughput does not depend on what the weights know) answers BBH-style
sports prompts built from the embedded task, side by side in one process:

- self-consistency, ``n`` chains per item: dlhw's :meth:`PromptGenerator.sample` (encoder once per
  item, its output repeated ``n`` times, the ``n`` chains decoded as one batch) vs ``n`` separate
  ``model.generate(do_sample=True)`` calls per item;
- answer-only: :meth:`PromptGenerator.greedy` (sorted by length, batches of ``--batch-size``) vs one
  ``generate`` call per item.

Every chain is forced to the same length (``min_new_tokens = max_new_tokens``) so both sides do the
same decoding work.

    python benchmarks/bbh_generation.py [--items 2] [--samples 5] [--tokens 16] [--answer-items 16]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.families.prompting import sports_tasks  # noqa: E402
from dlhw.families.prompting.data import build_prompt, parse_cot_prompts  # noqa: E402
from dlhw.families.prompting.infer import PromptGenerator  # noqa: E402
from dlhw.families.prompting.model import train_word_tokenizer  # noqa: E402

LARGE = {"d_model": 1024, "d_ff": 2816, "num_layers": 24, "num_decoder_layers": 24, "num_heads": 16, "d_kv": 64,
         "feed_forward_proj": "gated-gelu", "vocab_size": 32128}


def build(layers: int) -> tuple[object, object]:
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = train_word_tokenizer(sports_tasks.gazetteer_text() + [sports_tasks.cot_prompt_text()])
    config = T5Config(**{**LARGE, "num_layers": layers, "num_decoder_layers": layers}, pad_token_id=0,
                      eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    return T5ForConditionalGeneration(config).eval(), tokenizer


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2, help="self-consistency items")
    parser.add_argument("--samples", type=int, default=5, help="chains per item")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens per chain")
    parser.add_argument("--answer-items", type=int, default=16, help="answer-only items")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=24, help="encoder and decoder layers (24 = FLAN-T5-large)")
    args = parser.parse_args()

    model, tokenizer = build(args.layers)
    print("model built", flush=True)
    params = sum(p.numel() for p in model.parameters())
    items = sports_tasks.test_items()
    cot = parse_cot_prompts(sports_tasks.cot_prompt_text())
    sc_prompts = [build_prompt("cot-sc", i.input, cot=cot) for i in items[: args.items]]
    gen = PromptGenerator(model, tokenizer, "seq2seq", batch_size=args.samples, progress=False)
    force = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": True, "temperature": 0.7,
             "top_p": 0.95, "top_k": 0}

    def independent() -> None:
        with torch.no_grad():
            for prompt in sc_prompts:
                enc = tokenizer([prompt], return_tensors="pt")
                for _ in range(args.samples):
                    model.generate(**enc, **force)

    def reused() -> None:
        gen.sample(sc_prompts, args.samples, args.tokens, 0.7, 0.95, seed=0, min_new_tokens=args.tokens)

    gen.sample(sc_prompts[:1], 1, 2, 0.7, 0.95, seed=0)  # warm-up
    # both sides stop at EOS unless forced: every chain runs args.tokens steps (min_new_tokens on both)
    t_indep, _ = timed(independent)
    print(f"independent calls: {t_indep:.1f} s", flush=True)
    t_reuse, _ = timed(reused)
    print(f"encoder reuse: {t_reuse:.1f} s", flush=True)

    answer_prompts = [build_prompt("answer-only", i.input) for i in items[: args.answer_items]]
    batched = PromptGenerator(model, tokenizer, "seq2seq", batch_size=args.batch_size, progress=False)

    def one_by_one() -> None:
        with torch.no_grad():
            for prompt in answer_prompts:
                model.generate(**tokenizer([prompt], return_tensors="pt"), max_new_tokens=4, min_new_tokens=4,
                               do_sample=False)

    t_single, _ = timed(one_by_one)
    t_batch, _ = timed(lambda: batched.greedy(answer_prompts, 4, min_new_tokens=4))
    lengths = [len(ids) for ids in tokenizer(sc_prompts)["input_ids"]]
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: T5 {args.layers}+{args.layers} layers, {params / 1e6:.0f}M parameters (FLAN-T5-large shape)")
    print(f"self-consistency: {args.items} items x {args.samples} chains x {args.tokens} tokens, prompts "
          f"{min(lengths)}-{max(lengths)} tokens")
    print(f"  n independent generate calls   {t_indep:8.2f} s")
    print(f"  encoder once + batched chains  {t_reuse:8.2f} s")
    print(f"  ratio                          {t_indep / t_reuse:8.2f}x")
    print(f"answer-only: {args.answer_items} items, batch {args.batch_size}, 4 tokens")
    print(f"  one item at a time             {t_single:8.2f} s")
    print(f"  batched, sorted by length      {t_batch:8.2f} s")
    print(f"  ratio                          {t_single / t_batch:8.2f}x")


if __name__ == "__main__":
    main()
