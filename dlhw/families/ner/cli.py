"""``dlhw ner --model RUN --text "..."`` and ``dlhw ner INPUTS... --model RUN|EXPORT_DIR --out FILE``."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from dlhw.batch.options import Engine, engine_options
from dlhw.core.inputs import TEXT_EXTENSIONS, InputItem, convert_values, read_all, text_field
from dlhw.core.options import (
    backend_option,
    batch_size_option,
    check_dtype,
    device_option,
    dtype_option,
    int8_option,
    model_option,
    out_option,
    shard_option,
)
from dlhw.families.ner.config import LONG_LINE_CHARS


def line_text(item: InputItem) -> str:
    """The text to tag of one input: a .txt line as it is (entity offsets index it), a .jsonl
    record's ``"text"``."""
    return item.value if isinstance(item.value, str) else text_field(item.value)


@click.command()
@click.argument("inputs", nargs=-1)
@model_option("A NER run directory (torch), or an export directory / a run with export/onnx (onnxruntime, "
              "tensorrt).")
@click.option("--text", default=None, help="Tag this one sentence and print it (instead of INPUTS and --out).")
@out_option("Results file: .jsonl (one record per input line) or .csv (path,status,result,error). An existing "
            "file is continued, not overwritten.", required=False)
@backend_option()
@device_option
@dtype_option
@int8_option
@batch_size_option(32, "Lines tagged together (long lines are cut into windows first).")
@click.option("--long-line", type=click.IntRange(min=1), default=LONG_LINE_CHARS, show_default=True,
              metavar="CHARS", help="A line longer than this is tagged on its own, --batch-size windows at "
              "a time, holding one batch's scores at once (any length, in time linear in it).")
@shard_option
@engine_options
@click.pass_context
def ner_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, text: str | None, out: str | None,
            backend: str, device: str, dtype: str, int8: bool, batch_size: int, long_line: int,
            shard: str | None, engine: Engine) -> None:
    """Tag named entities (PER, ORG, LOC, MISC, DAT, TIM, MON, PCT, FAC, PRO, EVE) in English and Persian.

    With --text: print the sentence with its entities marked, then one line per entity with its
    character offsets.

    With INPUTS (.txt files with one text per line, .jsonl files with a "text" field, directories
    searched for both, globs) and --out: every line becomes one record with its tokens, IOB2 tags
    and entity spans whose offsets index the original line. Lines are split into words on spaces
    and punctuation; a Persian word joined by a zero-width non-joiner stays one word. A line
    longer than the model's window is tagged in overlapping windows, in full. An empty line, a
    line that is not UTF-8 or a bad JSON line becomes an error record naming its FILE:LINE and the
    job goes on (line breaks at the end of a file are not lines); a rerun with the same --out
    continues where a killed job stopped.

    \b
    Examples:
      dlhw ner --model runs/ner/20261127-101500 --text "Ali Rezaei flew to Paris on 3 May 2021 ."
      dlhw ner texts.txt more/ --model runs/ner/20261127-101500 --out entities.jsonl
      dlhw ner texts.txt --model runs/ner/20261127-101500 --backend onnxruntime --int8 --out e.csv
    \b
    Exit codes: 0 every line tagged; 1 some lines failed (see their error records); 2 usage error.
    """
    from dlhw.backends import open_export
    from dlhw.core.devices import placement_line
    from dlhw.errors import ConfigError
    from dlhw.families.ner.infer import open_predictor

    if text is not None and (inputs or out):
        raise ConfigError("--text tags one sentence; give INPUTS and --out instead for files, not both")
    if text is None and (not inputs or not out):
        raise ConfigError("give --text SENTENCE, or INPUTS and --out FILE (.jsonl or .csv)")
    if int8 and backend != "onnxruntime":
        raise ConfigError("--int8 runs the int8 ONNX model: add --backend onnxruntime")
    check_dtype(dtype, backend)
    if text is not None:
        engine.local_only("--text (one sentence)")
        record = open_predictor(model_path, backend, device, batch_size, int8, dtype,
                                long_line).tagger.tag_text(text)
        click.echo(record["tagged"])
        for e in record["entities"]:
            click.echo(f"  {e['type']:<5} {e['start']:>4}-{e['end']:<4} {e['text']}")
        return
    from dlhw.batch.runner import check_out, expand_inputs, parse_shard, predict_into

    shard_spec, target = parse_shard(shard), check_out(Path(out))  # type: ignore[arg-type]
    items = {item.key: item  # usage errors first, then the model
             for item in convert_values(read_all(expand_inputs(inputs, TEXT_EXTENSIONS, out=target)), line_text)}
    if not engine.ray:  # Ray actors open the model on their own nodes
        providers = None if backend == "torch" else open_export(model_path, backend, device).providers
        click.echo(placement_line(backend, device, dtype, providers), err=True)
    summary, lines = predict_into(target, partial(open_predictor, model_path, backend, device, batch_size, int8, dtype,
                                          long_line),
                                  items, batch_size, shard=shard_spec, engine=engine, desc="tagging", unit="line",
                                  noun="lines")
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)
