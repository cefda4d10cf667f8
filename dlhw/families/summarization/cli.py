"""``dlhw summarize INPUTS... --model RUN|EXPORT_DIR|HUB_ID --out FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

TEXT_EXTENSIONS = (".txt", ".jsonl")
DOC_FIELDS = ("article", "dialogue", "document", "text")


class Documents:
    """Input keys -> documents: a ``.txt`` file is one document (key: its path); a ``.jsonl`` file
    holds one per line (key: ``path:line``). A file that cannot be read as UTF-8, an empty file and
    a line without a document field stay keys whose loading raises, so they become error records."""

    def __init__(self, files: list[Path]):
        self.items: dict[str, Any] = {}
        for path in files:
            if path.suffix.lower() != ".jsonl":
                self.items[str(path)] = path
                continue
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError as err:
                self.items[str(path)] = ValueError(f"not UTF-8 text ({err.reason} at byte {err.start})")
                continue
            if not any(line.strip() for line in lines):
                self.items[str(path)] = ValueError("empty file")
            for lineno, line in enumerate(lines, start=1):
                if line.strip():
                    self.items[f"{path}:{lineno}"] = line

    def names(self) -> list[str]:
        return list(self.items)

    def load(self, key: str) -> str:
        item = self.items[key]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, Path):
            try:
                text = item.read_bytes().decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None
            if not text.strip():
                raise ValueError("empty file")
            return text.strip()
        try:
            record = json.loads(item)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON ({err.msg}, column {err.colno})") from None
        field = next((f for f in DOC_FIELDS if isinstance(record, dict) and f in record), None)
        if field is None or not str(record[field]).strip():
            raise ValueError(f"no document: expected a non-empty field {'|'.join(DOC_FIELDS)}")
        return str(record[field]).strip()


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_path", required=True,
              help="A summarization run directory, an export directory (onnxruntime / tensorrt), or a Hub id / "
                   "model folder (prompted zero- or few-shot).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Summaries file: .jsonl or .csv. An existing file is continued, not overwritten.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default="torch",
              show_default=True, help="Where the model runs.")
@click.option("--int8", is_flag=True, help="onnxruntime: run the int8 model (`dlhw export RUN --onnx --int8`).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Documents summarized together (left padding, KV cache).")
@click.option("--shots", type=click.IntRange(min=0), default=0, show_default=True,
              help="Examples put before each document (a run draws them from its train split).")
@click.option("--shots-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A .jsonl/.csv of examples (document + summary fields) for --shots.")
@click.option("--kind", type=click.Choice(["article", "dialogue"]), default="article", show_default=True,
              help="Hub models only: what the prompt calls the documents (runs know it).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="Summary length limit [default: the run's, chosen from its summary lengths].")
@click.option("--sample", is_flag=True, help="Sample instead of greedy decoding.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--shard", default=None, metavar="i/n",
              help="Summarize only shard i of n (deterministic by input key; run n jobs for the whole set).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.pass_context
def summarize_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, out: str, backend: str, int8: bool,
                  batch_size: int, shots: int, shots_from: str | None, kind: str, max_new_tokens: int | None,
                  sample: bool, temperature: float, top_p: float, top_k: int, seed: int, shard: str | None,
                  device: str) -> None:
    """Summarize documents: .txt files (one document each), .jsonl files (an article / dialogue /
    document / text field per line) and directories of them (searched recursively).

    Each batch's summaries are written and flushed as soon as it is done; a rerun with the same
    --out skips inputs already recorded, so a killed job continues without gaps or duplicates.
    A document longer than the model's input limit is cut and its record says "truncated": true;
    an empty file, a non-UTF-8 file or a bad JSONL line becomes an error record and the job goes on.

    \b
    Exit codes: 0 every document summarized; 1 some inputs failed (see their error records);
                2 usage error (bad flag, path or model).
    \b
    Examples:
      dlhw summarize articles/ --model runs/summarize-sft/<ts> --out summaries.jsonl
      dlhw summarize news.jsonl --model runs/summarize-sft/<ts>/export/onnx --backend onnxruntime --out s.csv
      dlhw summarize chats/ --model HuggingFaceTB/SmolLM2-360M-Instruct --shots 1 --shots-from ex.jsonl --out s.jsonl
    """
    from dlhw.batch.runner import (
        ResultWriter,
        expand_inputs,
        in_shard,
        parse_shard,
        run_batch_job,
    )
    from dlhw.families.summarization.infer import load_summarizer, sampler

    shard_spec = parse_shard(shard)
    documents = Documents(expand_inputs(inputs, TEXT_EXTENSIONS))
    keys = [k for k in documents.names() if in_shard(Path(k), shard_spec)]
    writer = ResultWriter(Path(out), "summary")
    pick = sampler(temperature, top_p, top_k, seed) if sample else None
    summarizer = load_summarizer(model_path, backend, device, shots, shots_from, kind, max_new_tokens, int8, pick)

    def process(batch: list[str]) -> list[dict[str, object]]:
        return [{"summary": s.text, "truncated": s.truncated, "tokens": s.tokens}
                for s in summarizer.summarize(batch)]

    try:
        summary = run_batch_job(keys, documents.load, process, writer, batch_size, 0, desc="summarizing", unit="doc")
    finally:
        writer.close()
    click.echo(summary.line("documents"), err=True)
    ctx.exit(summary.exit_code)
