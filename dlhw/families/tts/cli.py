"""``dlhw tts INPUTS --model RUN|EXPORT --out MANIFEST.jsonl [--wav-dir DIR]`` (batch) and
``dlhw tts --model RUN --text ... --out a.wav``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import click

from dlhw.batch.options import Engine, engine_options
from dlhw.core.inputs import TEXT_EXTENSIONS, InputItem, convert_values, read_all, text_field
from dlhw.core.options import (
    backend_option,
    batch_size_option,
    check_dtype,
    device_option,
    dtype_option,
    model_option,
    out_option,
    shard_option,
)


def utterance(item: InputItem) -> dict[str, Any]:
    """``{"text", "speaker"}`` of one input: a .txt line, or a .jsonl record's ``"text"`` and optional
    ``"speaker"`` (a client_id of the run, or a WAV file)."""
    if isinstance(item.value, str):
        return {"text": item.value, "speaker": None}
    speaker = item.value.get("speaker") if isinstance(item.value, dict) else None
    if speaker is not None and not isinstance(speaker, str):
        raise ValueError(f'"speaker" must be a string (a client_id or a WAV file), not {json.dumps(speaker)}')
    return {"text": text_field(item.value), "speaker": speaker}


def read_utterances(paths: list[Path]) -> list[InputItem]:
    """One item per line of the .txt / .jsonl ``paths`` (key ``FILE:LINE``), by the rules of
    :mod:`dlhw.core.inputs`: an empty, non-UTF-8 or malformed line is an error item, so it becomes an
    error record instead of silently vanishing (each WAV is named by its line)."""
    return convert_values(read_all(paths), utterance)


@click.command()
@click.argument("inputs", nargs=-1)
@model_option("A tts run directory (torch), or an export directory / a run with an export (onnxruntime).")
@click.option("--speaker", default=None, metavar="CLIENT_ID|WAV_FILE",
              help="A speaker of the run (its Common Voice client_id), or an audio file whose x-vector is used; "
                   "default: the run's first speaker. A .jsonl line's \"speaker\" wins.")
@out_option("Batch mode: the manifest, .jsonl or .csv, one record per line (its WAV, text, frames); an existing "
            "manifest is continued. With --text: the WAV file to write.", required=False)
@click.option("--wav-dir", type=click.Path(file_okay=False), default=None,
              help="Batch mode: where the WAVs go (STEM-00012-HASH.wav for line 12 of FILE, HASH a short hash of "
                   "FILE's path, so two files of one name never share a WAV; the manifest maps each line to "
                   "its WAV) [default: the folder of --out].")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None, hidden=True,
              help="The old spelling of --out DIR/manifest.jsonl (WAVs in DIR).")
@click.option("--text", default=None, help="Single mode: speak this text into --out (a WAV file).")
@backend_option(help="Where the model runs; onnxruntime uses RUN/export/onnx or an export directory (make it with "
                    "`dlhw export RUN --onnx`); tensorrt the same export built with --tensorrt (NVIDIA GPU).")
@device_option
@dtype_option
@batch_size_option(8, "Utterances synthesized together (padded, each stopping on its own).")
@shard_option
@engine_options
@click.pass_context
def tts_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, speaker: str | None, out: str | None,
            wav_dir: str | None, out_dir: str | None, text: str | None, backend: str, device: str, dtype: str,
            batch_size: int, shard: str | None, engine: Engine) -> None:
    """Speak Persian text with a fine-tuned SpeechT5: 16 kHz mono 16-bit WAVs.

    INPUTS are .txt files (one utterance per line) or .jsonl files ({"text", optional "speaker"}),
    or directories searched for them. Digits are read as Persian words; a line longer than the
    model allows is split at sentence boundaries and its parts joined; an empty, non-UTF-8 or
    malformed line, or one that normalizes to nothing, becomes an error record. Each WAV is written
    atomically into --wav-dir (default: the folder of --out) and recorded in the --out manifest as
    soon as its batch is done; a rerun skips lines already recorded, so a killed job resumes
    without gaps or duplicates.

    \b
    Exit codes: 0 every line spoken; 1 some lines failed (see their error records); 2 usage error.
    \b
    Examples:
      dlhw tts sentences.txt --model runs/tts/20261127-101500 --out wavs/manifest.jsonl
      dlhw tts lines.jsonl --model runs/tts/20261127-101500 --backend onnxruntime --out m.csv --wav-dir wavs/
      dlhw tts --model runs/tts/20261127-101500 --text "سلام، امروز ۲۳ آبان است." --out hello.wav
    """
    from dlhw.backends import open_export
    from dlhw.core.devices import placement_line
    from dlhw.core.utf8 import require_utf8
    from dlhw.errors import ConfigError
    from dlhw.families.tts.infer import open_predictor, write_wav

    check_dtype(dtype, backend)
    require_utf8(text, "--text")
    require_utf8(speaker, "--speaker")
    if out_dir is not None:
        if out is not None:
            raise ConfigError(f"--out-dir {out_dir} is the old spelling of --out {Path(out_dir) / 'manifest.jsonl'}; "
                              "give --out only")
        out = str(Path(out_dir) / "manifest.jsonl")
    if text is not None:
        if out is None or inputs or out_dir or wav_dir:
            raise ConfigError("--text goes with --out FILE.wav (one WAV) and without INPUTS / --wav-dir")
        engine.local_only("--text (one WAV)")
        speech = open_predictor(model_path, backend, device, dtype=dtype).synth.synthesize([text], [speaker])[0]
        write_wav(Path(out), speech.waveform)
        click.echo(f"{out}: {len(speech.waveform) / 16000:.2f} s, {speech.frames} frames, {speech.parts} part(s)",
                   err=True)
        return
    if not inputs or out is None:
        raise ConfigError("give INPUTS and --out MANIFEST.jsonl (batch mode), or --text and --out FILE.wav (one WAV)")
    if Path(out).suffix.lower() not in (".jsonl", ".csv"):
        raise ConfigError(f"--out {out}: in batch mode --out is the manifest (.jsonl or .csv); the WAVs go to "
                          "--wav-dir (default: the manifest's folder)")
    from dlhw.batch.runner import check_out, expand_inputs, parse_shard, predict_into

    shard_spec, target = parse_shard(shard), check_out(Path(out))  # usage errors first, then the model
    items = {item.key: item for item in read_utterances(expand_inputs(inputs, TEXT_EXTENSIONS, out=target))}
    if not engine.ray:  # Ray actors open the model on their own nodes
        providers = None if backend == "torch" else open_export(model_path, backend, device).providers
        click.echo(placement_line(backend, device, dtype, providers), err=True)
    opener = partial(open_predictor, model_path, backend, device, Path(wav_dir) if wav_dir else Path(out).parent,
                     speaker, dtype)  # the Ray engine's actors write the WAVs: --wav-dir must be shared with them
    summary, lines = predict_into(target, opener, items, batch_size, shard=shard_spec, engine=engine,
                                  desc="speaking", unit="line", noun="lines")
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)
