"""``dlhw chat --model RUN`` (interactive) and ``dlhw chat --model RUN --prompts FILE --out FILE.jsonl`` (batch);
``dlhw chat RUN ...`` is the same."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click

from dlhw.batch.options import Engine, engine_options
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


@click.command()
@click.argument("run", required=False, type=click.Path(exists=True, file_okay=False))
@model_option("A chat run directory (torch), or an export directory / a run with export/onnx (onnxruntime, "
              "tensorrt; make it with `dlhw export RUN --onnx`). `dlhw chat RUN` is the same.", required=False)
@click.option("--prompts", type=click.Path(dir_okay=False), default=None,
              help="Batch mode: .txt (one prompt per line) or .jsonl ({\"prompt\"} / {\"messages\"}, "
                   "optional \"id\").")
@out_option("Batch mode: answers file (.jsonl or .csv), one record per prompt. An existing file is continued, "
            "not overwritten.", required=False)
@backend_option()
@device_option
@dtype_option
@int8_option
@compile_option
@batch_size_option(8, "Prompts generated together (left padding).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--system", default=None, help="A system message put before every prompt.")
@shard_option
@engine_options
@click.pass_context
def chat_cmd(ctx: click.Context, run: str | None, model_path: str | None, prompts: str | None, out: str | None,
             backend: str, device: str, dtype: str, int8: bool, compile_: bool, batch_size: int, max_new_tokens: int,
             system: str | None, shard: str | None, engine: Engine) -> None:
    """Talk to the fine-tuned model of a chat run, or of an export directory (greedy decoding).

    The model is --model RUN, or RUN as the first argument (one of the two).

    Without --prompts: an interactive session; the answer streams token by token and the
    conversation is kept (type /reset to start over, /exit or Ctrl-D to leave).

    With --prompts FILE --out ANSWERS.jsonl: every prompt is answered in batches on the shared
    batch-job runner; each batch is written as soon as it is done, a rerun skips prompts already
    answered, and the summary reports tokens per second.

    \b
    Examples:
      dlhw chat --model runs/chat-lora/20261123-101500
      dlhw chat --model runs/chat-lora/20261123-101500 --prompts prompts.txt --out answers.jsonl --batch-size 16
      dlhw chat --model runs/chat-lora/20261123-101500/export/onnx --backend onnxruntime --prompts p.txt --out a.jsonl
    """
    from dlhw.backends import open_export
    from dlhw.core.devices import placement_line
    from dlhw.core.utf8 import require_utf8
    from dlhw.errors import ConfigError
    from dlhw.families.chat.infer import open_predictor

    require_utf8(system, "--system")
    if run is not None and model_path is not None:
        raise ConfigError(f"the run is given twice ({run} and --model {model_path}); give --model RUN only")
    model = run if run is not None else model_path
    check_compile(compile_, backend)
    check_dtype(dtype, backend)
    if model is None:
        raise ConfigError("give the chat run: --model RUN (a run directory or an export directory)")
    if (prompts is None) != (out is None):
        raise ConfigError("--prompts and --out go together (batch mode); give both or neither")
    if prompts is None:
        engine.local_only("the interactive session (no --prompts)")
        generator = open_predictor(model, backend, device, max_new_tokens, int8, system, dtype).generator
        if compile_:
            generator.use_compile()
        _interactive(generator, system)
        return
    from dlhw.batch.runner import check_out, parse_shard, predict_into
    from dlhw.families.chat.infer import read_prompts

    shard_spec, target = parse_shard(shard), check_out(Path(out), [Path(prompts)])  # type: ignore[arg-type]
    items = {item.key: item for item in read_prompts(Path(prompts))}  # usage errors first, then the model
    from dlhw.lm.generate import LENGTH_WINDOW

    if not engine.ray:  # Ray actors open the model on their own nodes
        providers = None if backend == "torch" else open_export(model, backend, device).providers
        click.echo(placement_line(backend, device, dtype, providers), err=True)
    opener = partial(open_batch_predictor, model, backend, device, max_new_tokens, int8, system, dtype, batch_size,
                     compile_)
    summary, lines = predict_into(target, opener, items, batch_size * LENGTH_WINDOW, shard=shard_spec, engine=engine,
                                  desc="answering", unit="prompt", noun="prompts")
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)


def open_batch_predictor(model: str, backend: str, device: str, max_new_tokens: int, int8: bool, system: str | None,
                         dtype: str, batch_size: int, compile_: bool) -> Any:
    """Batch mode's predictor (a ``ChatPredictor``), decoding windows of prompts in batches of
    ``batch_size`` of similar length; at module level, so a Ray actor can open it too."""
    from dlhw.families.chat.infer import open_predictor

    predictor = open_predictor(model, backend, device, max_new_tokens, int8, system, dtype)
    predictor.generator.batch_size = batch_size
    if compile_:
        predictor.generator.use_compile()
    return predictor


def _interactive(generator: Any, system: str | None) -> None:
    from transformers import TextStreamer

    from dlhw.core.utf8 import bad_byte, lenient_stdin

    lenient_stdin()  # a line with a non-UTF-8 byte is refused on its own; the session goes on
    streamer = TextStreamer(generator.tokenizer, skip_special_tokens=True)  # gets only new tokens
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    click.echo("chat: type a message; /reset clears the conversation, /exit (or Ctrl-D) leaves.", err=True)
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            click.echo("", err=True)
            return
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            history = history[:1] if system else []
            continue
        if not text:
            continue
        if (where := bad_byte(text)) is not None:
            click.echo(f"that line is not UTF-8 text ({where}); type it again in UTF-8", err=True)
            continue
        history.append({"role": "user", "content": text})
        click.echo("model> ", nl=False)
        answer = generator.generate([history], streamer=streamer)[0]
        history.append({"role": "assistant", "content": answer.text})
