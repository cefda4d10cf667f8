"""Chat recipes at full size on a CUDA GPU: bf16, gradient checkpointing, batched generation.

No hub access is assumed: the base is a Llama-3.2-3B-shaped model (hidden 3072, 28 layers,
24 heads, 8 KV heads, MLP 8192, vocabulary 128256) with random weights, saved once to a local
folder with a small tokenizer, and given to the real recipe as ``model.name``. Each method then
runs ``train_chat`` (HF Trainer, bf16) for a fixed number of steps on the embedded Persian
conversations, and the script prints wall time, peak CUDA memory, trainable parameters and
training tokens/s per method, plus greedy batched-generation throughput.

    python benchmarks/chat_gpu.py [--steps 30] [--methods lora,dora,partial,prompt-tuning]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.config import dump_yaml, to_dict  # noqa: E402
from dlhw.core.registry import resolve_config  # noqa: E402
from dlhw.families.chat.persian_tasks import plain_text  # noqa: E402
from dlhw.lm.tiny import train_tiny_tokenizer  # noqa: E402

RECIPE = {"lora": "chat-lora", "dora": "chat-lora", "rslora": "chat-lora", "loha": "chat-lora",
          "partial": "chat-partial", "prompt-tuning": "chat-prompt-tuning", "prefix-tuning": "chat-prefix-tuning",
          "p-tuning": "chat-p-tuning"}


def build_base(path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tiny_tokenizer(plain_text(2000), 768)
    config = LlamaConfig(
        vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
        num_key_value_heads=8, max_position_embeddings=4096, rope_theta=500000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    del model
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--methods", default="lora,dora,partial,prompt-tuning")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    from dlhw.families.chat.train import train_chat

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        start = time.perf_counter()
        build_base(base)
        print(f"random Llama-3.2-3B-shaped base saved in {time.perf_counter() - start:.0f} s", flush=True)
        for method in args.methods.split(","):
            overrides = [
                f"model.name={base}", "model.quantization=none", "data.source=embedded",
                "data.embedded_examples=1400", "data.val_examples=64", "data.test_examples=64",
                f"train.max_steps={args.steps}", "train.eval_strategy=steps", f"train.eval_steps={args.steps}",
                "train.logging_steps=5", "train.batch_size=8", "train.gradient_accumulation_steps=1",
                "train.eval_on_start=false", "eval.exact_match_examples=64", "eval.max_new_tokens=16",
                "eval.batch_size=32",
            ]
            if method in ("dora", "rslora", "loha"):
                overrides.append(f"method.variant={method}")
            config = resolve_config(RECIPE[method], "full", overrides=overrides)
            run_dir = Path(tmp) / method
            run_dir.mkdir()
            (run_dir / "config.yaml").write_text(dump_yaml(to_dict(config)))
            start = time.perf_counter()
            summary = train_chat(config, run_dir)
            total = time.perf_counter() - start
            train = summary["train"]
            records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
            runtime = next((r["train_runtime"] for r in records if "train_runtime" in r), train["wall_time_s"])
            tokens = summary["data"]["tokens"]["train"]["tokens_mean"] * config.train.batch_size * args.steps
            rows.append({
                "method": method, "trainable": summary["model"]["trainable_parameters"],
                "trainable_percent": summary["model"]["trainable_percent"], "train_s": runtime,
                "tokens_per_s": tokens / runtime, "peak_gib": train["peak_memory_mb"] / 1024, "total_s": total,
            })
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, gradient checkpointing, "
          f"batch 8, {args.steps} steps")
    print(f"{'method':<14} {'trainable':>14} {'%':>8} {'train s':>8} {'tokens/s':>9} {'peak GiB':>9}")
    for r in rows:
        print(f"{r['method']:<14} {r['trainable']:>14,} {r['trainable_percent']:>8.3f} {r['train_s']:>8.1f} "
              f"{r['tokens_per_s']:>9.0f} {r['peak_gib']:>9.1f}")


if __name__ == "__main__":
    main()
