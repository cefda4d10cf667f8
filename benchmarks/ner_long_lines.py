"""NER tagging time of one long line: 1 KB to 10 MB, through the predictor `dlhw ner` uses.

Each line is the embedded task's test sentences (English and Persian, alternating), joined by
spaces and repeated until the line holds the wanted number of UTF-8 bytes. Each line is tagged
alone by :func:`dlhw.families.ner.infer.open_predictor`'s ``predict`` and its record turned into
the JSON line the batch runner writes -- what `dlhw ner FILE --model RUN --out o.jsonl` does with
that line. Prints, side by side from one run, the seconds, the seconds per MB and their ratio to
the smallest line's (about 1 everywhere: time linear in the line's length), the windows and
entities found and the process's peak memory so far (lines run from the shortest up, so each
peak is that line's or an earlier one's).

    OMP_NUM_THREADS=1 flock /tmp/dlhw-test.lock flock /tmp/dlhw-bench.lock \\
        .venv/bin/python benchmarks/ner_long_lines.py --run runs/ner/<timestamp>
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

SIZES = {"1 KB": 1_000, "10 KB": 10_000, "100 KB": 100_000, "1 MB": 1_000_000, "10 MB": 10_000_000}


def long_line(n_bytes: int, sentences: list[str]) -> str:
    """The sentences joined by spaces, repeated, cut at a space to about ``n_bytes`` UTF-8 bytes."""
    block = " ".join(sentences)
    block_bytes = len(block.encode("utf-8"))
    text = " ".join([block] * (n_bytes // block_bytes + 1))
    cut = len(text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore"))
    return text[:cut].rsplit(" ", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained ner run (dlhw train ner --preset tiny)")
    parser.add_argument("--batch-size", type=int, default=32, help="as dlhw ner --batch-size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dlhw.core.jsonl import json_line
    from dlhw.families.ner.infer import open_predictor
    from dlhw.families.ner.ner_tasks import embedded_splits

    sentences = [" ".join(s.tokens) for s in embedded_splits(0, 0, 300, seed=42)["test"]]
    predictor = open_predictor(str(args.run), "torch", "cpu", args.batch_size)
    tagger = predictor.tagger
    calls = {"windows": 0}
    logits_fn = tagger.logits_fn

    def counted(ids: object, mask: object) -> object:
        calls["windows"] += len(ids)  # type: ignore[arg-type]
        return logits_fn(ids, mask)

    tagger.logits_fn = counted
    print(f"model {args.run}: windows of {tagger.max_length} sub-tokens, stride {tagger.stride}; "
          f"batch {args.batch_size}; {args.threads} thread(s); lines over {tagger.long_line} characters are "
          "tagged alone", flush=True)
    rows = []
    for name in args.sizes:
        text = long_line(SIZES[name], sentences)
        mb = len(text.encode("utf-8")) / 1e6
        calls["windows"] = 0
        start = time.perf_counter()
        record = predictor.predict([text])[0]
        written = len(json_line({"path": "bench.txt:1", "status": "ok", **record}).encode("utf-8"))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
        rows.append((name, mb, len(record["tokens"]), calls["windows"], len(record["entities"]), seconds, peak))
        print(f"{name:>7}: {seconds:8.2f} s  {seconds / mb:7.2f} s/MB  {len(record['tokens'])} words, "
              f"{calls['windows']} windows, {len(record['entities'])} entities, record {written / 1e6:.1f} MB, "
              f"peak RSS {peak:.0f} MiB", flush=True)
    base = rows[0][5] / rows[0][1]
    print("\n| line | MB (UTF-8) | words | windows | entities | seconds | s/MB | s/MB vs first | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, mb, words, windows, entities, seconds, peak in rows:
        print(f"| {name} | {mb:.3f} | {words} | {windows} | {entities} | {seconds:.2f} | {seconds / mb:.2f} | "
              f"{seconds / mb / base:.2f}x | {peak:.0f} |")


if __name__ == "__main__":
    main()
