"""SFT throughput: dlhw's completion-only loss with dynamic padding vs the seed's pad-to-1,024.

The seed padded prompt and summary separately to 1,024 tokens each (no -100 mask), so every step
computes 2,048 positions per example whatever its length. dlhw feeds TRL's ``SFTTrainer`` the same
prompt + summary ids with a completion mask, and its collator pads each batch to its longest example.
Both train a SmolLM2-360M-shaped model (``--layers`` to shorten it) on the embedded articles for a few
optimizer steps through the Trainer; the number compared is *real* (non-pad) tokens per second.

    python benchmarks/summarize_sft_padding.py [--steps 4] [--batch 4] [--layers 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.families.summarization.data import PromptBuilder  # noqa: E402
from dlhw.families.summarization.summary_tasks import make_articles, plain_text  # noqa: E402
from dlhw.lm.tiny import train_tiny_tokenizer  # noqa: E402

SEED_PAD = 1024


def model_for(tokenizer, layers: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=layers, num_attention_heads=15,
        num_key_value_heads=5, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id))


def seed_collator(pad_id: int):
    """Prompt and summary each padded to 1,024 (the seed's tokenizer calls), labels = input ids."""
    def collate(items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        rows = []
        for it in items:
            cut = it["completion_mask"].index(1)
            prompt, summary = it["input_ids"][:cut], it["input_ids"][cut:]
            rows.append(prompt + [pad_id] * (SEED_PAD - len(prompt)) + summary + [pad_id] * (SEED_PAD - len(summary)))
        ids = torch.tensor(rows)  # (B, 2048)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    return collate


def run(model, tokenizer, data: list[dict[str, list[int]]], steps: int, batch: int, seed_style: bool) -> float:
    import datasets
    from trl import SFTConfig, SFTTrainer

    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-5,
                         report_to=[], use_cpu=not torch.cuda.is_available(), save_strategy="no", logging_steps=1000,
                         completion_only_loss=not seed_style, max_length=None if seed_style else 1024,
                         remove_unused_columns=False)
        trainer = SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(data),
                             processing_class=tokenizer, data_collator=seed_collator(tokenizer.pad_token_id)
                             if seed_style else None)
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4, help="decoder layers (32 = SmolLM2-360M)")
    args = parser.parse_args()
    tokenizer = train_tiny_tokenizer(plain_text(1000), 768)
    builder = PromptBuilder(tokenizer, "article", "plain", 512, 1024, 64)
    data = []
    for a in make_articles(args.steps * args.batch, seed=3):
        prompt, completion = builder.prompt(a.document).ids, builder.completion_ids(a.references[0])
        data.append({"input_ids": prompt + completion, "completion_mask": [0] * len(prompt) + [1] * len(completion)})
    real = sum(len(d["input_ids"]) for d in data)
    results = {}
    for name, seed_style in (("seed: pad prompt and summary to 1,024 each", True),
                             ("dlhw: completion-only loss, dynamic padding", False)):
        results[name] = run(model_for(tokenizer, args.layers), tokenizer, data, args.steps, args.batch, seed_style)
    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} threads; torch {torch.__version__}")
    print(f"SmolLM2-360M-shaped Llama with {args.layers} layers; {args.steps} steps x batch {args.batch}; "
          f"{real} real tokens ({real / len(data):.0f} per example)")
    seed_s = next(iter(results.values()))
    for name, secs in results.items():
        print(f"{name:48} {secs:7.2f} s {real / secs:9.1f} real tokens/s {seed_s / secs:6.2f}x")


if __name__ == "__main__":
    main()
