"""``dlhw tts INPUTS --model RUN|EXPORT --out-dir DIR`` (batch) and ``dlhw tts --model RUN --text ... --out a.wav``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click


def read_utterances(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(key, {"text", "speaker"})`` per line of a .txt (one utterance per line) or .jsonl file.

    The key is ``FILE:LINE`` (1-based); every line is an item, so an empty line becomes an error
    record rather than silently vanishing. A .jsonl line that is not an object with ``text`` is
    an item too, with the reason it cannot be read.
    """
    items = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        key = f"{path}:{n}"
        if path.suffix.lower() == ".jsonl":
            try:
                obj = json.loads(line) if line.strip() else {"text": ""}
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError('expected an object with a "text" string')
            except ValueError as err:
                items.append((key, {"text": None, "speaker": None, "error": f"line {n}: {err}"}))
                continue
            items.append((key, {"text": obj["text"], "speaker": obj.get("speaker")}))
        else:
            items.append((key, {"text": line, "speaker": None}))
    return items


def wav_name(key: str) -> str:
    """``dir/sentences.txt:12`` -> ``sentences-00012.wav``."""
    file, _, line = key.rpartition(":")
    return f"{Path(file).stem}-{int(line):05d}.wav"


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A tts run directory (torch), or an export directory / a run with an export (onnxruntime).")
@click.option("--speaker", default=None, metavar="CLIENT_ID|WAV_FILE",
              help="A speaker of the run (its Common Voice client_id), or an audio file whose x-vector is used; "
                   "default: the run's first speaker. A .jsonl line's \"speaker\" wins.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Batch mode: WAVs and manifest.jsonl go here; an existing manifest is continued.")
@click.option("--text", default=None, help="Single mode: speak this text into --out.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Single mode: the WAV file to write.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch", show_default=True,
              help="Where the model runs; onnxruntime uses RUN/export/onnx or an export directory.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Utterances synthesized together (padded, each stopping on its own).")
@click.option("--shard", default=None, metavar="i/n", help="Only shard i of n of the lines (deterministic by key).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.pass_context
def tts_cmd(ctx: click.Context, inputs: tuple[str, ...], model_path: str, speaker: str | None, out_dir: str | None,
            text: str | None, out: str | None, backend: str, batch_size: int, shard: str | None, device: str) -> None:
    """Speak Persian text with a fine-tuned SpeechT5: 16 kHz mono 16-bit WAVs.

    INPUTS are .txt files (one utterance per line) or .jsonl files ({"text", optional "speaker"}),
    or directories searched for them. Digits are read as Persian words; a line longer than the
    model allows is split at sentence boundaries and its parts joined; a line that normalizes to
    nothing becomes an error record. Each WAV is written atomically and recorded in
    OUT_DIR/manifest.jsonl as soon as its batch is done; a rerun skips lines already recorded, so a
    killed job resumes without gaps or duplicates.

    \b
    Exit codes: 0 every line spoken; 1 some lines failed (see their error records); 2 usage error.
    \b
    Examples:
      dlhw tts sentences.txt --model runs/tts/20261127-101500 --out-dir wavs/
      dlhw tts lines.jsonl --model runs/tts/20261127-101500 --backend onnxruntime --out-dir wavs/ --batch-size 16
      dlhw tts --model runs/tts/20261127-101500 --text "سلام، امروز ۲۳ آبان است." --out hello.wav
    """
    from dlhw.errors import ConfigError
    from dlhw.families.tts.infer import load_synthesizer, write_wav

    if text is not None:
        if out is None or inputs or out_dir:
            raise ConfigError("--text goes with --out (one WAV) and without INPUTS / --out-dir")
        synth = load_synthesizer(model_path, backend, device)  # type: ignore[arg-type]
        speech = synth.synthesize([text], [speaker])[0]
        write_wav(Path(out), speech.waveform)
        click.echo(f"{out}: {len(speech.waveform) / 16000:.2f} s, {speech.frames} frames, {speech.parts} part(s)",
                   err=True)
        return
    if not inputs or out_dir is None:
        raise ConfigError("give INPUTS and --out-dir (batch mode), or --text and --out (one WAV)")
    synth = load_synthesizer(model_path, backend, device)  # type: ignore[arg-type]
    ctx.exit(_batch(synth, inputs, Path(out_dir), speaker, batch_size, shard))


def _batch(synth: Any, inputs: tuple[str, ...], out_dir: Path, speaker: str | None, batch_size: int,
           shard: str | None) -> int:
    import numpy as np

    from dlhw.batch.runner import (
        ResultWriter,
        expand_inputs,
        in_shard,
        parse_shard,
        run_batch_job,
    )
    from dlhw.families.tts.infer import write_wav

    shard_spec = parse_shard(shard)
    items: dict[str, dict[str, Any]] = {}
    for path in expand_inputs(inputs, (".txt", ".jsonl")):
        items.update((k, v) for k, v in read_utterances(path) if in_shard(Path(k), shard_spec))
    writer = ResultWriter(out_dir / "manifest.jsonl", "wav")
    seconds = 0.0
    start = time.perf_counter()

    def load(key: str) -> tuple[str, list[str], str | None]:
        item = items[key]
        if item.get("error"):
            raise ValueError(item["error"])
        return key, synth.prepare(item["text"]), item["speaker"] or speaker

    def process(batch: list[tuple[str, list[str], str | None]]) -> list[dict[str, Any]]:
        nonlocal seconds
        pieces, owners, vectors = [], [], []
        for i, (_, parts, who) in enumerate(batch):
            vector = synth.speaker_vector(who)
            pieces += parts
            owners += [i] * len(parts)
            vectors += [vector] * len(parts)
        speech = synth.synthesize_pieces(pieces, vectors)
        records = []
        for i, (key, parts, who) in enumerate(batch):
            mine = [s for s, o in zip(speech, owners, strict=True) if o == i]
            wave = np.concatenate([s.waveform for s in mine])
            wav = out_dir / wav_name(key)
            write_wav(wav, wave)
            seconds += len(wave) / 16000
            records.append({"wav": str(wav), "text": " ".join(parts), "parts": len(parts),
                            "frames": sum(s.frames for s in mine), "seconds": round(len(wave) / 16000, 3),
                            "speaker": who or synth.default_speaker()})
        return records

    try:
        summary = run_batch_job(list(items), load, process, writer, batch_size, 0, desc="speaking", unit="line")
    finally:
        writer.close()
    wall = time.perf_counter() - start
    click.echo(summary.line("lines"), err=True)
    click.echo(f"{seconds:.1f} s of audio in {wall:.1f} s ({seconds / max(wall, 1e-9):.2f} s of audio per second)",
               err=True)
    return summary.exit_code
