"""``dlhw ner --model RUN --text "..."`` and ``dlhw ner INPUTS... --model RUN|EXPORT_DIR --out FILE``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

TEXT_EXTENSIONS = (".txt", ".jsonl")


def read_lines(path: Path) -> list[tuple[str, bytes]]:
    """``(path:line, raw bytes)`` per line of a .txt / .jsonl file (LF or CRLF, BOM dropped); the
    empty piece after a final newline is not a line."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(f"{path}:{i}", raw.removesuffix(b"\r")) for i, raw in enumerate(lines, start=1)]


def decode_line(raw: bytes, jsonl: bool) -> str:
    """The text of one line; raises (becoming an error record) for bad bytes, blank text, bad JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})") from None
    if jsonl:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON ({err.msg}, column {err.colno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError('expected an object with a string "text" field')
        text = record["text"]
    if not text.strip():
        raise ValueError("empty line: nothing to tag")
    return text


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A NER run directory (torch), or an export directory / a run with export/onnx "
                   "(onnxruntime, tensorrt).")
@click.option("--text", default=None, help="Tag this one sentence and print it (instead of INPUTS and --out).")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Results file: .jsonl (one record per input line) or .csv (path,status,result,error). An "
                   "existing file is continued, not overwritten.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default="torch",
              show_default=True, help="Where the model runs.")
@click.option("--int8", is_flag=True, help="onnxruntime: run the int8 model (`dlhw export RUN --onnx --int8`).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Lines tagged together (long lines are cut into windows first).")
@click.option("--shard", default=None, metavar="i/n",
              help="Process only shard i of n of the lines (deterministic by file and line number).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.pass_context
def ner_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, text: str | None, out: str | None,
            backend: str, int8: bool, batch_size: int, shard: str | None, device: str) -> None:
    """Tag named entities (PER, ORG, LOC, MISC, DAT, TIM, MON, PCT, FAC, PRO, EVE) in English and Persian.

    With --text: print the sentence with its entities marked, then one line per entity with its
    character offsets.

    With INPUTS (.txt files with one text per line, .jsonl files with a "text" field, directories
    searched for both, globs) and --out: every line becomes one record with its tokens, IOB2 tags
    and entity spans whose offsets index the original line. Lines are split into words on spaces
    and punctuation; a Persian word joined by a zero-width non-joiner stays one word. A line
    longer than the model's window is tagged in overlapping windows, in full. An empty line, a
    line that is not UTF-8 or a bad JSON line becomes an error record and the job goes on; a
    rerun with the same --out continues where a killed job stopped.

    \b
    Examples:
      dlhw ner --model runs/ner/20261127-101500 --text "Ali Rezaei flew to Paris on 3 May 2021 ."
      dlhw ner texts.txt more/ --model runs/ner/20261127-101500 --out entities.jsonl
      dlhw ner texts.txt --model runs/ner/20261127-101500 --backend onnxruntime --int8 --out e.csv
    \b
    Exit codes: 0 every line tagged; 1 some lines failed (see their error records); 2 usage error.
    """
    from dlhw.errors import ConfigError
    from dlhw.families.ner.infer import load_tagger

    if text is not None and (inputs or out):
        raise ConfigError("--text tags one sentence; give INPUTS and --out instead for files, not both")
    if text is None and (not inputs or not out):
        raise ConfigError("give --text SENTENCE, or INPUTS and --out FILE (.jsonl or .csv)")
    if int8 and backend != "onnxruntime":
        raise ConfigError("--int8 runs the int8 ONNX model: add --backend onnxruntime")
    tagger = load_tagger(model_path, backend, device, batch_size, int8)  # type: ignore[arg-type]
    if text is not None:
        record = tagger.tag_text(text)
        click.echo(record["tagged"])
        for e in record["entities"]:
            click.echo(f"  {e['type']:<5} {e['start']:>4}-{e['end']:<4} {e['text']}")
        return
    ctx.exit(_batch(tagger, inputs, Path(out), batch_size, shard))  # type: ignore[arg-type]


def _batch(tagger: object, inputs: tuple[str, ...], out: Path, batch_size: int, shard: str | None) -> int:
    from dlhw.batch.runner import (
        ResultWriter,
        expand_inputs,
        in_shard,
        parse_shard,
        run_batch_job,
    )

    shard_spec = parse_shard(shard)
    items: dict[str, tuple[bytes, bool]] = {}
    for path in expand_inputs(inputs, TEXT_EXTENSIONS):
        for key, raw in read_lines(path):
            if in_shard(Path(key), shard_spec):
                items[key] = (raw, path.suffix.lower() == ".jsonl")
    writer = ResultWriter(out, "tagged")
    words = 0
    start = time.perf_counter()

    def load(key: str) -> str:
        return decode_line(*items[key])

    def process(texts: list[str]) -> list[dict[str, object]]:
        nonlocal words
        records = tagger.tag_texts(texts)  # type: ignore[attr-defined]
        words += sum(len(r["tokens"]) for r in records)
        return records

    try:
        summary = run_batch_job(list(items), load, process, writer, batch_size, 0, desc="tagging", unit="line")
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    click.echo(summary.line("lines"), err=True)
    click.echo(f"{words} words tagged in {seconds:.1f} s ({words / max(seconds, 1e-9):.1f} words/s)", err=True)
    return summary.exit_code
