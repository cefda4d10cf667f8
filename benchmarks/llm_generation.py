"""Chat generation: per-prompt loop vs batched torch vs dlhw's ONNX export on ONNX Runtime vs ONNX Runtime GenAI.

A SmolLM2-360M-shaped Llama (hidden 960, 32 layers, 15 heads, 5 KV heads, MLP 2560, vocabulary
49,152; 362M parameters) with random weights -- built from a config, nothing downloaded -- and
a small byte-level BPE tokenizer with a chat template. The same Persian prompts (different
lengths) are answered greedily, ``--new-tokens`` each:

1. torch, one prompt at a time (the seed's loop);
2. torch eager, batches of 8 (dlhw's ``ChatGenerator``: length-sorted batches, left padding, KV cache,
   last-position logits at prefill);
3. ONNX Runtime, batches of 8, dlhw's own export (:func:`dlhw.lm.export.export_decoder`) decoded by the
   same loop (``OrtChatGenerator``); on the CPU also its ``--int8`` copy, for the record (int8
   weights change greedy tokens, so it is not compared as the same output);
4. ONNX Runtime GenAI's builder graph of the same weights, same batches (:mod:`genai_peer`), where it
   imports -- a peer, not a dependency.

Prints tokens/s and the ratios, and checks that every answer's tokens are equal to the loop's. On the
CPU it also prints the **fp32 ceiling**: the machine's read bandwidth and GEMM rate, measured in the same
run, and the most that any fp32 runtime could gain over batched torch eager with them -- every decode
step of a batch reads all the weights at least once (at the measured bandwidth), every prompt token
costs at least two FLOPs per non-embedding weight (at the measured GEMM rate) -- and the same ceiling
for any ONNX Runtime graph, with the bandwidth at which ONNX Runtime's CPU MatMul reads fp32 weights
for a batch of 8 rows (also measured in the run).

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

from genai_peer import build_genai, genai_available, genai_batched  # noqa: E402

from dlhw.backends import choose_providers  # noqa: E402
from dlhw.backends.quantize import quantize_int8  # noqa: E402
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


def timed(generator, prompts, batch: int) -> tuple[float, list[list[int]]]:
    generator.batch_size = batch  # length-sorted batches, answers in input order
    generator.generate(prompts[:batch])  # warm-up
    start = time.perf_counter()
    tokens = [g.token_ids for g in generator.generate(prompts)]
    return time.perf_counter() - start, tokens


def machine_peaks() -> tuple[float, float]:
    """(read bandwidth in bytes/s, fp32 GEMM rate in FLOP/s) with torch's threads, best of five each.

    Bandwidth: the sum of a 1.6 GB tensor (three times the largest L3 seen on these machines);
    GEMM: a 2048 x 2048 x 2048 fp32 product."""
    big = torch.ones(400_000_000)
    square = torch.randn(2048, 2048)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    bandwidth = big.numel() * 4 / best(big.sum)
    flops = 2 * 2048**3 / best(lambda: square @ square)
    del big
    return bandwidth, flops


def ort_matmul_bandwidth(rows: int, threads: int) -> float:
    """Bytes/s at which ONNX Runtime's CPU MatMul reads fp32 weights for ``rows`` input rows (a decode step
    of that batch): 160 prepacked 960 x 2560 initializers (1.57 GB, past any L3), best of five runs."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    count, shape = 160, (960, 2560)
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal(shape, dtype=np.float32) * 0.02, f"w{i}") for i in range(count)]
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"]) for i in range(count)]
    nodes.append(helper.make_node("Sum", [f"y{i}" for i in range(count)], ["y"]))
    graph = helper.make_graph(nodes, "matmuls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, shape[1]])], weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "matmuls.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path,
                  save_as_external_data=True, location="matmuls.data")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"x": rng.standard_normal((rows, shape[0]), dtype=np.float32)}
        session.run(None, feed)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
        del session
    return count * shape[0] * shape[1] * 4 / min(times)


def fp32_ceiling(model, lengths: list[int], new_tokens: int, batch_s: float, peaks: tuple[float, float, float]) -> str:
    """The lower bound of any fp32 runtime's time for this job on this machine, and the ratio over
    batched torch eager (``batch_s``) it allows; the same with ONNX Runtime's own MatMul bandwidth
    (``peaks``: read bandwidth, GEMM rate, ONNX Runtime's MatMul bandwidth at ``BATCH`` rows).
    Decode: ``ceil(prompts / BATCH) * (new_tokens - 1)`` steps, each reading every weight once (tied embeddings counted once); prefill: two FLOPs per
    non-embedding weight per real prompt token (padding, attention and the output layer left out, so
    the bound is generous)."""
    bandwidth, flops, ort_bandwidth = peaks
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    body = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    steps = -(-len(lengths) // BATCH) * (new_tokens - 1)
    decode_s = steps * weight_bytes / bandwidth
    prefill_s = 2 * body * sum(lengths) / flops
    ort_decode_s = steps * weight_bytes / ort_bandwidth
    return (f"fp32 ceiling on this machine: read bandwidth {bandwidth / 1e9:.1f} GB/s, GEMM {flops / 1e9:.0f} GFLOP/s "
            f"(both measured now); {steps} decode steps x {weight_bytes / 1e9:.2f} GB of weights >= {decode_s:.2f} s, "
            f"{sum(lengths)} prompt tokens x {2 * body / 1e9:.2f} GFLOP >= {prefill_s:.2f} s: no fp32 runtime can "
            f"beat torch eager batch {BATCH} by more than {batch_s / (decode_s + prefill_s):.2f}x here.\n"
            f"ONNX Runtime's own ceiling: its CPU MatMul reads fp32 weights at {ort_bandwidth / 1e9:.1f} GB/s for "
            f"{BATCH} rows (measured now), so its decode steps take >= {ort_decode_s:.2f} s: no ONNX Runtime graph can "
            f"beat torch eager batch {BATCH} by more than {batch_s / (ort_decode_s + prefill_s):.2f}x here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-ort", action="store_true", help="torch only")
    parser.add_argument("--no-genai", action="store_true", help="leave out ONNX Runtime GenAI (the peer)")
    args = parser.parse_args()
    tokenizer = train_tiny_tokenizer(plain_text(1000), 768)
    model = smollm2_360m_shaped(tokenizer).to(args.device)
    params = sum(p.numel() for p in model.parameters())
    prompts = [e.messages(with_answer=False) for e in make_examples(args.prompts, seed=11)]
    peaks = (*machine_peaks(), ort_matmul_bandwidth(BATCH, torch.get_num_threads())) if args.device == "cpu" else None
    torch_gen = ChatGenerator(model, tokenizer, max_new_tokens=args.new_tokens)
    torch_gen.stop_ids = [-1]  # random weights: always generate the full length, so every run does equal work
    lengths = [len(torch_gen.formatter.prompt_ids(p)) for p in prompts]
    with torch.inference_mode():
        loop_s, loop_tokens = timed(torch_gen, prompts, 1)
        batch_s, batch_tokens = timed(torch_gen, prompts, BATCH)
    ort_s, ort_tokens, export_s, int8 = None, None, 0.0, None
    if not args.no_ort:
        ort_s, ort_tokens, export_s, int8 = run_ort(model, tokenizer, prompts, args)
    genai_s, genai_tokens = None, None
    if not args.no_genai and args.device == "cpu" and genai_available():
        import onnxruntime_genai as og

        ids = [torch_gen.formatter.prompt_ids(p) for p in prompts]
        with tempfile.TemporaryDirectory() as tmp:
            genai = og.Model(str(build_genai(model, tokenizer, Path(tmp))))
            genai_batched(genai, ids[:2], 2, 2, tokenizer.pad_token_id)  # warm-up
            start = time.perf_counter()
            genai_tokens = genai_batched(genai, ids, BATCH, args.new_tokens, tokenizer.pad_token_id)
            genai_s = time.perf_counter() - start
    total = args.prompts * args.new_tokens
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{cpu_model()}, {torch.get_num_threads()} threads"
    print(f"\nmachine: {where}; torch {torch.__version__}; device {args.device}")
    print(f"SmolLM2-360M-shaped Llama, {params / 1e6:.0f}M parameters, random weights, fp32; {args.prompts} prompts "
          f"of {min(lengths)}-{max(lengths)} tokens, {args.new_tokens} new tokens each"
          + (f"; ONNX export {export_s:.0f} s" if ort_s else ""))
    print(f"{'':34} {'seconds':>8} {'tokens/s':>9} {'vs loop':>8}")
    rows = [("torch, one prompt at a time", loop_s), (f"torch, batch {BATCH} (left padding)", batch_s)]
    if ort_s:
        rows.append((f"dlhw onnxruntime, batch {BATCH}", ort_s))
    if genai_s:
        rows.append((f"onnxruntime-genai (peer), batch {BATCH}", genai_s))
    if int8:
        rows.append((f"dlhw onnxruntime int8, batch {BATCH}", int8[0]))
    for name, secs in rows:
        print(f"{name:34} {secs:8.2f} {total / secs:9.1f} {loop_s / secs:7.2f}x")
    print(f"batched torch vs loop: {loop_s / batch_s:.2f}x" + (
        f"; dlhw ORT vs torch eager (both batch {BATCH}): {batch_s / ort_s:.2f}x" if ort_s else "") + (
        f"; dlhw ORT vs onnxruntime-genai: {genai_s / ort_s:.2f}x" if ort_s and genai_s else ""))
    if peaks:
        print(fp32_ceiling(model, lengths, args.new_tokens, batch_s, peaks))
    same_batch = sum(a == b for a, b in zip(loop_tokens, batch_tokens, strict=True))
    line = f"greedy tokens equal to the loop's: batched torch {same_batch}/{len(prompts)}"
    if ort_tokens is not None:
        line += f", dlhw ORT {sum(a == b for a, b in zip(loop_tokens, ort_tokens, strict=True))}/{len(prompts)}"
    if genai_tokens is not None:
        line += f", GenAI {sum(a == b for a, b in zip(loop_tokens, genai_tokens, strict=True))}/{len(prompts)}"
    if int8:
        line += (f", int8 {sum(a == b for a, b in zip(loop_tokens, int8[1], strict=True))}/{len(prompts)} "
                 f"(int8 weights change tokens; dlhw ORT int8 vs torch eager: {batch_s / int8[0]:.2f}x)")
    print(line)


def run_ort(model, tokenizer, prompts, args) -> tuple[float, list[list[int]], float, tuple | None]:
    """dlhw's export on ONNX Runtime (fp32), and on the CPU its int8 copy (``--int8``) for the record."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        export_decoder(model.cpu(), tokenizer, Path(tmp), 18, 512, stop_token_ids(model, tokenizer))
        export_s = time.perf_counter() - start
        providers = choose_providers("onnxruntime", args.device)
        ort_gen = OrtChatGenerator(Path(tmp), providers, max_new_tokens=args.new_tokens)
        ort_gen.stop_ids = [-1]
        ort_s, ort_tokens = timed(ort_gen, prompts, BATCH)
        int8 = None
        if args.device == "cpu":
            quantize_int8(Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx")
            int8_gen = OrtChatGenerator(Path(tmp), providers, max_new_tokens=args.new_tokens,
                                        model_file="model.int8.onnx")
            int8_gen.stop_ids = [-1]
            int8 = timed(int8_gen, prompts, BATCH)
    return ort_s, ort_tokens, export_s, int8


if __name__ == "__main__":
    main()
