"""``dlhw summarize INPUTS... --model RUN|EXPORT_DIR|HUB_ID --out FILE``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click

from dlhw.batch.options import Engine, engine_options
from dlhw.core.inputs import TEXT_EXTENSIONS, InputItem, convert_values, read_all, text_field
from dlhw.core.options import (
    backend_option,
    batch_size_option,
    check_compile,
    check_dtype,
    compile_option,
    device_option,
    dtype_option,
    int8_option,
    model_option,
    out_option,
    shard_option,
)
from dlhw.families.summarization.data import DOC_FIELDS


def document_text(item: InputItem) -> str:
    """The document of one input: a whole .txt file, or a .jsonl record's first field of
    :data:`DOC_FIELDS`; surrounding whitespace dropped."""
    return (item.value if isinstance(item.value, str) else text_field(item.value, DOC_FIELDS)).strip()


def read_documents(files: list[Path]) -> list[InputItem]:
    """Input items -> documents: a ``.txt`` file is one document (key: its path), a ``.jsonl`` file
    one per line (key: ``path:line``), by the rules of :mod:`dlhw.core.inputs`: an empty or
    non-UTF-8 file, and an empty, non-UTF-8, malformed or document-less line, are error items."""
    return convert_values(read_all(files, txt="document"), document_text)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@model_option("A summarization run directory, an export directory (onnxruntime / tensorrt), or a Hub id / "
              "model folder (prompted zero- or few-shot).", must_exist=False, metavar="RUN|HUB_ID")
@out_option("Summaries file: .jsonl or .csv, one record per document. An existing file is continued, not "
            "overwritten.")
@backend_option()
@device_option
@dtype_option
@int8_option
@compile_option
@batch_size_option(8, "Documents summarized together (left padding, KV cache).")
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
@shard_option
@engine_options
@click.pass_context
def summarize_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, out: str, backend: str, device: str,
                  dtype: str, int8: bool, compile_: bool, batch_size: int, shots: int, shots_from: str | None, kind: str,
                  max_new_tokens: int | None, sample: bool, temperature: float, top_p: float, top_k: int, seed: int,
                  shard: str | None, engine: Engine) -> None:
    """Summarize documents: .txt files (one document each), .jsonl files (an article / dialogue /
    document / text field per line) and directories of them (searched recursively).

    Each batch's summaries are written and flushed as soon as it is done; a rerun with the same
    --out skips inputs already recorded, so a killed job continues without gaps or duplicates.
    A document longer than the model's input limit is cut and its record says "truncated": true;
    an empty file, a non-UTF-8 file or an empty, non-UTF-8 or malformed JSONL line becomes an error
    record naming its file (and line) and the job goes on.

    \b
    Exit codes: 0 every document summarized; 1 some inputs failed (see their error records);
                2 usage error (bad flag, path or model).
    \b
    Examples:
      dlhw summarize articles/ --model runs/summarize-sft/<ts> --out summaries.jsonl
      dlhw summarize news.jsonl --model runs/summarize-sft/<ts>/export/onnx --backend onnxruntime --out s.csv
      dlhw summarize chats/ --model HuggingFaceTB/SmolLM2-360M-Instruct --shots 1 --shots-from ex.jsonl --out s.jsonl
    """
    from dlhw.backends import open_export
    from dlhw.batch.runner import check_out, expand_inputs, parse_shard, predict_into
    from dlhw.core.devices import placement_line
    check_compile(compile_, backend)
    check_dtype(dtype, backend)
    shard_spec, target = parse_shard(shard), check_out(Path(out))  # usage errors first, then the model
    documents = {item.key: item for item in read_documents(expand_inputs(inputs, TEXT_EXTENSIONS, out=target))}
    from dlhw.lm.generate import LENGTH_WINDOW

    if not engine.ray:  # Ray actors open the model on their own nodes
        providers = None if backend == "torch" else open_export(model_path, backend, device).providers
        click.echo(placement_line(backend, device, dtype, providers), err=True)
    sampling = (temperature, top_p, top_k, seed) if sample else None
    opener = partial(open_batch_predictor, model_path, backend, device, shots, shots_from, kind, max_new_tokens, int8,
                     sampling, dtype, batch_size, compile_)
    summary, lines = predict_into(target, opener, documents, batch_size * LENGTH_WINDOW, shard=shard_spec,
                                  engine=engine, desc="summarizing", unit="doc", noun="documents")
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)


def open_batch_predictor(model_path: str, backend: str, device: str, shots: int, shots_from: str | None, kind: str,
                         max_new_tokens: int | None, int8: bool, sampling: tuple[float, float, int, int] | None,
                         dtype: str, batch_size: int, compile_: bool) -> Any:
    """The batch predictor (a ``SummaryPredictor``), decoding windows of documents in batches of
    ``batch_size`` of similar length, greedy or with the seeded sampler of ``sampling`` (temperature,
    top-p, top-k, seed); at module level, so a Ray actor can open it too."""
    from dlhw.families.summarization.infer import open_predictor
    from dlhw.lm.sampling import sampler

    pick = sampler(*sampling) if sampling is not None else None
    predictor = open_predictor(model_path, backend, device, shots, shots_from, kind, max_new_tokens, int8, pick, dtype)
    predictor.summarizer.generator.batch_size = batch_size
    if compile_:
        predictor.summarizer.generator.use_compile()
    return predictor
