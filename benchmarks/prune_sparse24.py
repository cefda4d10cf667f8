"""2:4 semi-structured sparsity: what it buys on a GPU for the Linear layers of a SmolLM2-360M shape.

Every Linear of one SmolLM2-360M decoder layer (hidden 960, intermediate 2560, 15 query / 5
key-value heads of 64) is pruned 2:4 with `dlhw.pruning.methods` (magnitude), then timed dense
(fp16 or bf16 cuBLAS) against `torch.sparse.to_sparse_semi_structured` (sparse tensor cores) on the
same input, side by side in one run, with the largest output difference. Needs a CUDA GPU of compute
capability 8.0 or newer; on a CPU it says so and exits 2 (unstructured or 2:4 zeros give no speed-up
with dense CPU kernels).

    python benchmarks/prune_sparse24.py [--tokens 4096] [--dtype fp16|bf16] [--layers 32]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from dlhw.pruning.methods import bake_masks, prunable_modules, prune_model

SHAPES = {  # (in, out) of one SmolLM2-360M decoder layer
    "q_proj": (960, 960), "k_proj": (960, 320), "v_proj": (960, 320), "o_proj": (960, 960),
    "gate_proj": (960, 2560), "up_proj": (960, 2560), "down_proj": (2560, 960),
}


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4096, help="rows of the input (batch x sequence)")
    parser.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    parser.add_argument("--layers", type=int, default=32, help="decoder layers' worth of Linears per pass")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("2:4 sparse kernels need a CUDA GPU (compute capability >= 8.0); none here. On a CPU, "
              "zeros give no speed-up with dense kernels: nothing to measure.", file=sys.stderr)
        return 2
    from torch.sparse import to_sparse_semi_structured

    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16
    torch.manual_seed(0)
    block = nn.ModuleDict({name: nn.Linear(i, o, bias=False) for name, (i, o) in SHAPES.items()})
    prune_model(block, prunable_modules(block), 0.5, pattern="2:4")
    bake_masks(block)
    block = block.to("cuda", dtype)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.dtype}, {args.tokens} tokens, "
          f"{args.layers} layers")
    print(f"{'module':<10} {'dense ms':>9} {'2:4 ms':>9} {'speed-up':>9} {'max |diff|':>11}")
    dense_total = sparse_total = 0.0
    for name, (i, _) in SHAPES.items():
        x = torch.randn(args.tokens, i, device="cuda", dtype=dtype)
        weight = block[name].weight.detach()
        sparse = to_sparse_semi_structured(weight)
        dense_s = timed(lambda w=weight, x=x: torch.mm(x, w.t()), args.repeats)
        sparse_s = timed(lambda s=sparse, x=x: torch.mm(s, x.t()), args.repeats)  # (out, tokens)
        diff = (torch.mm(sparse, x.t()).t() - torch.mm(x, weight.t())).abs().max().item()
        dense_total += dense_s * args.layers
        sparse_total += sparse_s * args.layers
        print(f"{name:<10} {1e3 * dense_s:9.3f} {1e3 * sparse_s:9.3f} {dense_s / sparse_s:8.2f}x {diff:11.2e}")
    print(f"all Linears of {args.layers} layers: dense {1e3 * dense_total:.2f} ms, 2:4 {1e3 * sparse_total:.2f} ms, "
          f"speed-up {dense_total / sparse_total:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
