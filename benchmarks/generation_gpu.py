"""Generation on a CUDA GPU: ONNX Runtime with IO binding vs without, torch static cache + compile vs eager.

A SmolLM2-360M-shaped Llama (random weights, built from a config; ``--layers`` / ``--hidden`` make it
larger) answers ``--prompts`` prompts of different lengths greedily, ``--new-tokens`` each, in
length-sorted batches of ``--batch`` (default 32), side by side in one process:

1. torch eager (``ChatGenerator``: dynamic cache, last-position logits at prefill);
2. torch with a static cache and ``torch.compile(mode="reduce-overhead")`` (``--compile``), after one
   warm-up batch that compiles;
3. dlhw's ONNX export on ONNX Runtime's CUDA provider, every step's KV cache copied to and from the
   host (plain ``session.run``);
4. the same with IO binding: the cache stays on the GPU between steps (what dlhw does on CUDA).

Prints tokens/s and the ratios, and the number of answers whose tokens equal eager torch's. Rows 3-4
need ``onnxruntime-gpu`` (they are left out, with one line, without its CUDA provider).

    python benchmarks/generation_gpu.py [--prompts 64] [--new-tokens 64] [--batch 32] [--dtype fp32|fp16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.families.chat.persian_tasks import make_examples, plain_text  # noqa: E402
from dlhw.lm.export import export_decoder  # noqa: E402
from dlhw.lm.generate import ChatGenerator  # noqa: E402
from dlhw.lm.ort import OrtChatGenerator  # noqa: E402
from dlhw.lm.tiny import train_tiny_tokenizer  # noqa: E402


def build(tokenizer, layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=layers,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def timed(generator, prompts: list[list[int]], batch: int) -> tuple[float, list[list[int]]]:
    generator.batch_size = batch
    generator.stop_ids = [-1]  # random weights: every row runs the full length
    generator.generate_ids(prompts[:batch])  # warm-up (compiles, builds kernels)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = [g.token_ids for g in generator.generate_ids(prompts)]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--layers", type=int, default=32)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("generation_gpu.py measures CUDA paths and torch sees no CUDA GPU here")
    import onnxruntime as ort

    tokenizer = train_tiny_tokenizer(plain_text(1000), 768)
    model = build(tokenizer, args.layers).cuda()
    eager = ChatGenerator(model, tokenizer, max_new_tokens=args.new_tokens)
    prompts = [eager.formatter.prompt_ids(e.messages(with_answer=False)) for e in make_examples(args.prompts, seed=11)]
    rows = []
    with torch.inference_mode():
        eager_s, eager_tokens = timed(eager, prompts, args.batch)
        rows.append(("torch eager", eager_s, eager_tokens))
        compiled = ChatGenerator(model, tokenizer, max_new_tokens=args.new_tokens, compile=True)
        rows.append(("torch static cache + compile", *timed(compiled, prompts, args.batch)))
    if "CUDAExecutionProvider" in ort.get_available_providers():
        with tempfile.TemporaryDirectory() as tmp:
            export_decoder(build(tokenizer, args.layers), tokenizer, Path(tmp), 18, 1024, [-1])
            for name, binding in (("onnxruntime CUDA, plain run", False), ("onnxruntime CUDA + IO binding", True)):
                gen = OrtChatGenerator(Path(tmp), ["CUDAExecutionProvider"], args.new_tokens, io_binding=binding)
                rows.append((name, *timed(gen, prompts, args.batch)))
    else:
        print("onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu): ORT rows left out")
    total = args.prompts * args.new_tokens
    print(f"\n{torch.cuda.get_device_name()}; torch {torch.__version__}; onnxruntime {ort.__version__}")
    print(f"SmolLM2-360M-shaped Llama, {args.layers} layers, fp32; {args.prompts} prompts x {args.new_tokens} new "
          f"tokens, batch {args.batch}")
    print(f"{'':34} {'seconds':>8} {'tokens/s':>9} {'vs eager':>9} {'tokens equal':>13}")
    for name, secs, tokens in rows:
        equal = sum(a == b for a, b in zip(eager_tokens, tokens, strict=True))
        print(f"{name:34} {secs:8.2f} {total / secs:9.1f} {eager_s / secs:8.2f}x {equal:>8}/{len(prompts)}")


if __name__ == "__main__":
    main()
