"""NER tagging speed: torch fp32 one sentence at a time and batched, ONNX Runtime fp32 and int8 batched.

An XLM-R-base-shaped encoder (12 layers, hidden 768, 12 heads, MLP 3072; random weights, nothing
downloaded) with dlhw's head tags the same embedded test sentences on every backend, through the
same windowing code (:class:`dlhw.families.ner.infer.Tagger`). The vocabulary is the tiny tokenizer's
(a few thousand pieces instead of XLM-R's 250k): the embedding table is a lookup whose size does
not change the arithmetic per token. Prints sub-tokens per second and ratios to batched torch,
measured side by side in one run.

With ``--run RUN`` (a trained tiny ``ner`` run) it also exports that run with ``--int8`` to a
temporary directory and prints the int8 entity-F1 change on its test split.

    python benchmarks/ner_backends.py --sentences 300 --run runs/ner/<timestamp>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def build_model(vocab_size: int, pad_id: int) -> torch.nn.Module:
    from transformers import AutoModel, XLMRobertaConfig

    from dlhw.families.ner.model import NerModel

    config = XLMRobertaConfig(vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              intermediate_size=3072, max_position_embeddings=514, pad_token_id=pad_id,
                              type_vocab_size=1)
    torch.manual_seed(0)
    return NerModel(AutoModel.from_config(config, add_pooling_layer=False)).eval()


def timed(label: str, fn: object, sentences: list[list[str]], pieces: int) -> tuple[float, list[list[str]]]:
    start = time.perf_counter()
    tags = fn(sentences)  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:7.2f} s  {pieces / seconds:9.1f} sub-tokens/s", flush=True)
    return pieces / seconds, tags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", type=Path, default=None, help="a trained tiny ner run: also measure int8's F1 change")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dlhw.backends import open_session
    from dlhw.families.ner.data import LABELS
    from dlhw.families.ner.export import LogitsGraph, quantize_weights
    from dlhw.families.ner.infer import Tagger, ort_logits, torch_logits
    from dlhw.families.ner.model import train_tiny_tokenizer
    from dlhw.families.ner.ner_tasks import embedded_splits, tokenizer_corpus

    splits = embedded_splits(1600, 0, args.sentences, seed=42)
    tokenizer = train_tiny_tokenizer(tokenizer_corpus(splits["train"]), 2000)
    sentences = [s.tokens for s in splits["test"]]
    pieces = sum(len(ids) + 2 for ids in tokenizer(sentences, is_split_into_words=True,
                                                   add_special_tokens=False)["input_ids"])
    model = build_model(len(tokenizer), tokenizer.pad_token_id)
    params = sum(p.numel() for p in model.parameters())
    print(f"XLM-R-base-shaped model: {params / 1e6:.1f}M parameters (vocabulary {len(tokenizer)}); "
          f"{len(sentences)} sentences, {pieces} sub-tokens; {args.threads} threads", flush=True)

    def tagger(logits_fn: object, batch: int) -> Tagger:
        return Tagger(tokenizer, list(LABELS), 256, 32, logits_fn, batch)

    cpu = torch.device("cpu")
    one = tagger(torch_logits(model, cpu), 1)
    batched = tagger(torch_logits(model, cpu), args.batch_size)
    rates = {}
    rates["torch fp32, one sentence at a time"], _ = timed("torch fp32, one sentence at a time",
                                                           lambda s: [one.tag([x])[0] for x in s], sentences, pieces)
    rates["torch fp32, batched"], torch_tags = timed("torch fp32, batched", batched.tag, sentences, pieces)

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        enc = tokenizer(sentences[:4], is_split_into_words=True, padding=True, return_tensors="pt")
        axes = {0: "batch", 1: "sequence"}
        with torch.no_grad():
            torch.onnx.export(LogitsGraph(model).eval(), (enc["input_ids"], enc["attention_mask"]), str(fp32),
                              dynamo=False, opset_version=17, input_names=["input_ids", "attention_mask"],
                              output_names=["logits"], dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                                     "logits": axes})
        model.eval()
        quantize_weights(fp32, int8)
        ort32 = tagger(ort_logits(open_session(fp32, ["CPUExecutionProvider"], args.threads)), args.batch_size)
        ort8 = tagger(ort_logits(open_session(int8, ["CPUExecutionProvider"], args.threads)), args.batch_size)
        rates["onnxruntime fp32, batched"], ort_tags = timed("onnxruntime fp32, batched", ort32.tag, sentences, pieces)
        rates["onnxruntime int8, batched"], int8_tags = timed("onnxruntime int8, batched", ort8.tag, sentences, pieces)
        sizes = (fp32.stat().st_size / 2**20, int8.stat().st_size / 2**20)

    same = sum(a == b for a, b in zip(torch_tags, ort_tags, strict=True))
    agree = np.mean([a == b for x, y in zip(torch_tags, int8_tags, strict=True) for a, b in zip(x, y, strict=True)])
    base = rates["torch fp32, batched"]
    print(f"\nmodel files: fp32 {sizes[0]:.0f} MiB, int8 {sizes[1]:.0f} MiB")
    print(f"ORT fp32 tags equal torch on {same}/{len(sentences)} sentences; int8 tags agree with torch on "
          f"{agree:.1%} of the words (random weights: agreement, not F1)")
    print("\n| backend | sub-tokens/s | vs torch batched |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {rate / base:.2f}x |")

    if args.run:
        from dlhw.backends.export import export_run

        with tempfile.TemporaryDirectory() as tmp:
            out = export_run(args.run, out=Path(tmp) / "onnx", int8=True)
            import json

            report = json.loads((out / "export.json").read_text())["int8"]
        print(f"\nint8 on the tiny task ({args.run}): {report['summary']}")


if __name__ == "__main__":
    main()
