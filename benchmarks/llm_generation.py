"""Chat generation: per-prompt loop vs batched torch, and ONNX Runtime (KV cache) vs torch eager.

A SmolLM2-360M-shaped Llama (hidden 960, 32 layers, 15 heads, 5 KV heads, MLP 2560, vocabulary
49,152; 362M parameters) with random weights -- built from a config, nothing downloaded -- and
a small byte-level BPE tokenizer with a chat template. The same Persian prompts (different
lengths) are answered greedily, ``--new-tokens`` each:

1. torch, one prompt at a time (the seed's loop);
2. torch, batches of 8 with left padding (dlhw's ``ChatGenerator``);
3. ONNX Runtime, batches of 8, the model exported by dlhw's chat exporter (optimum-onnx decoder
   with KV cache) and decoded by the same loop (``OrtChatGenerator``).

Prints tokens/s and the ratios, and checks that every answer's tokens are equal across the three.

    python benchmarks/llm_generation.py [--prompts 16] [--new-tokens 32] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.backends import choose_providers  # noqa: E402
from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.families.chat.persian_tasks import make_examples, plain_text  # noqa: E402
from dlhw.lm.export import export_decoder  # noqa: E402
from dlhw.lm.generate import ChatGenerator, stop_token_ids  # noqa: E402
from dlhw.lm.ort import OrtChatGenerator  # noqa: E402
from dlhw.lm.tiny import train_tiny_tokenizer  # noqa: E402

BATCH = 8


def smollm2_360m_shaped(tokenizer) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
        num_key_value_heads=5, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def timed(generate, prompts, batch: int) -> tuple[float, list[list[int]]]:
    generate(prompts[:batch])  # warm-up
    start = time.perf_counter()
    tokens = []
    for i in range(0, len(prompts), batch):
        tokens += [g.token_ids for g in generate(prompts[i:i + batch])]
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-ort", action="store_true", help="torch only (where optimum-onnx is not installed)")
    args = parser.parse_args()
    tokenizer = train_tiny_tokenizer(plain_text(1000), 768)
    model = smollm2_360m_shaped(tokenizer).to(args.device)
    params = sum(p.numel() for p in model.parameters())
    prompts = [e.messages(with_answer=False) for e in make_examples(args.prompts, seed=11)]
    torch_gen = ChatGenerator(model, tokenizer, max_new_tokens=args.new_tokens)
    torch_gen.stop_ids = [-1]  # random weights: always generate the full length, so every run does equal work
    lengths = [len(torch_gen.formatter.prompt_ids(p)) for p in prompts]
    with torch.inference_mode():
        loop_s, loop_tokens = timed(torch_gen.generate, prompts, 1)
        batch_s, batch_tokens = timed(torch_gen.generate, prompts, BATCH)
    ort_s, ort_tokens, export_s = None, None, 0.0
    if not args.no_ort:
        ort_s, ort_tokens, export_s = run_ort(model, tokenizer, prompts, args)
    total = args.prompts * args.new_tokens
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_model()}, {torch.get_num_threads()} threads"
    print(f"\nmachine: {where}; torch {torch.__version__}; device {args.device}")
    print(f"SmolLM2-360M-shaped Llama, {params / 1e6:.0f}M parameters, random weights, fp32; {args.prompts} prompts "
          f"of {min(lengths)}-{max(lengths)} tokens, {args.new_tokens} new tokens each"
          + (f"; ONNX export {export_s:.0f} s" if ort_s else ""))
    print(f"{'':34} {'seconds':>8} {'tokens/s':>9} {'vs loop':>8}")
    rows = [("torch, one prompt at a time", loop_s), (f"torch, batch {BATCH} (left padding)", batch_s)]
    if ort_s:
        rows.append((f"onnxruntime + KV cache, batch {BATCH}", ort_s))
    for name, secs in rows:
        print(f"{name:34} {secs:8.2f} {total / secs:9.1f} {loop_s / secs:7.2f}x")
    print(f"batched torch vs loop: {loop_s / batch_s:.2f}x" + (
        f"; ORT vs torch eager (both batch {BATCH}): {batch_s / ort_s:.2f}x" if ort_s else ""))
    same_batch = sum(a == b for a, b in zip(loop_tokens, batch_tokens, strict=True))
    line = f"greedy tokens equal to the loop's: batched torch {same_batch}/{len(prompts)}"
    if ort_tokens is not None:
        line += f", ORT {sum(a == b for a, b in zip(loop_tokens, ort_tokens, strict=True))}/{len(prompts)}"
    print(line)


def run_ort(model, tokenizer, prompts, args) -> tuple[float, list[list[int]], float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        export_decoder(model.cpu(), tokenizer, Path(tmp), 18, 512, stop_token_ids(model, tokenizer))
        export_s = time.perf_counter() - start
        providers = choose_providers("onnxruntime", args.device)
        ort_gen = OrtChatGenerator(Path(tmp), providers, max_new_tokens=args.new_tokens)
        ort_gen.stop_ids = [-1]
        ort_s, ort_tokens = timed(ort_gen.generate, prompts, BATCH)
    return ort_s, ort_tokens, export_s


if __name__ == "__main__":
    main()
