"""Chat fine-tuning: padding every example to 512 tokens vs dynamic padding + length-grouped batches.

The seed report padded every conversation to 512 tokens. dlhw pads each batch to its longest
example (``ChatCollator``) and lets HF Trainer group examples of similar length
(``train.group_by_length``). Both runs train the same small Llama with LoRA through the real
engine (``run_training``, HF Trainer) on the same conversations, side by side in one process,
and report *non-pad* (real) tokens per second.

The conversations are the embedded Persian tasks chained into multi-turn dialogues (1 to 24
turns, geometric), formatted with the chat template, so lengths spread from ~30 to 512 tokens
with a long tail, as instruction data does.

    python benchmarks/chat_padding.py [--examples 256] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.config import TrainConfig  # noqa: E402
from dlhw.config.peft import MethodConfig  # noqa: E402
from dlhw.engine.trainer import run_training  # noqa: E402
from dlhw.families.chat.config import TinyModelConfig  # noqa: E402
from dlhw.families.chat.persian_tasks import make_examples, plain_text  # noqa: E402
from dlhw.lm.peft import apply_method  # noqa: E402
from dlhw.lm.template import ChatCollator, ChatFormatter  # noqa: E402
from dlhw.lm.tiny import tiny_model_config, train_tiny_tokenizer  # noqa: E402

MAX_LENGTH = 512


def conversations(n: int, seed: int) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    pool = make_examples(4000, seed)
    out = []
    for _ in range(n):
        turns = min(24, 1 + int(rng.expovariate(1 / 5)))
        msgs = []
        for e in rng.sample(pool, turns):
            msgs += e.messages()[-2:]
        out.append(msgs)
    return out


def run(mode: str, data: list[dict], tokenizer, args, root: Path) -> dict:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = TinyModelConfig(hidden_size=128, intermediate_size=344, num_layers=4, num_heads=4, num_kv_heads=2)
    model = AutoModelForCausalLM.from_config(tiny_model_config(cfg, tokenizer))
    model = apply_method(model, MethodConfig(kind="lora", r=8, alpha=16), str(root / "tok"))
    dynamic = mode == "dynamic"
    train = TrainConfig(epochs=1, batch_size=args.batch_size, eval_batch_size=args.batch_size, learning_rate=1e-3,
                        early_stopping_patience=0, num_workers=0, logging_steps=1000, save_total_limit=1,
                        group_by_length=dynamic, device="cpu")
    collator = ChatCollator(tokenizer.pad_token_id, pad_to=None if dynamic else MAX_LENGTH)
    run_dir = root / mode
    run_dir.mkdir()
    batches = [collator(data[i:i + args.batch_size]) for i in range(0, len(data), args.batch_size)]
    _, result = run_training(model, data, data[:8], collator, train, run_dir, seed=0)
    real = sum(len(d["input_ids"]) for d in data)
    padded = sum(b["input_ids"].numel() for b in batches) if not dynamic else None
    return {"seconds": result.wall_time_s, "real_tokens": real, "tokens_per_s": real / result.wall_time_s,
            "padded_tokens": padded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    tokenizer = train_tiny_tokenizer(plain_text(2000), 768)
    formatter = ChatFormatter(tokenizer, MAX_LENGTH)
    data = formatter.encode_all(conversations(args.examples, seed=1))
    lengths = sorted(len(d["input_ids"]) for d in data)
    print(f"{len(data)} conversations; tokens per conversation: median {lengths[len(lengths) // 2]}, "
          f"mean {statistics.fmean(lengths):.0f}, p95 {lengths[int(0.95 * len(lengths))]}, max {lengths[-1]}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokenizer.save_pretrained(root / "tok")
        fixed = run("pad-to-512", data, tokenizer, args, root)
        dynamic = run("dynamic", data, tokenizer, args, root)
    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("small Llama (hidden 128, 4 layers) + LoRA r=8, batch", args.batch_size, ", one epoch, HF Trainer")
    print(f"{'':34} {'seconds':>8} {'real tokens/s':>14}")
    print(f"{'pad every example to 512':34} {fixed['seconds']:8.1f} {fixed['tokens_per_s']:14.0f}")
    print(f"{'dynamic padding + group_by_length':34} {dynamic['seconds']:8.1f} {dynamic['tokens_per_s']:14.0f}")
    print(f"share of real tokens when padding to 512: {fixed['real_tokens'] / fixed['padded_tokens']:.1%}")
    print(f"speed-up (real tokens/s): {dynamic['tokens_per_s'] / fixed['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
