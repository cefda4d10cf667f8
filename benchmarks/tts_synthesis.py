"""TTS synthesis throughput: one utterance at a time vs batched, torch vs ONNX Runtime, on CPU.

The tiny tts run (trained and exported here unless ``--run`` names one with an export) speaks the
same held-out-like sentences four ways -- torch one at a time, torch batched, ORT one at a time,
ORT batched -- and the script prints seconds of audio produced per second of wall time and the
ratios, measured side by side in one process (best of ``--repeats`` after a warm-up). Batched
synthesis pads the texts, decodes them together and lets each stop on its own step.

    python benchmarks/tts_synthesis.py [--run RUN] [--texts 32] [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from dlhw.families.tts.infer import Synthesizer, load_synthesizer  # noqa: E402
from dlhw.families.tts.speech_tasks import make_sentences  # noqa: E402


def ensure_run(run: str | None, root: Path) -> Path:
    if run:
        return Path(run)
    run_dir = root / "tts"
    for argv in (["train", "tts", "--preset", "tiny", "--output-dir", str(run_dir)],
                 ["export", str(run_dir), "--onnx"]):
        subprocess.run([sys.executable, "-m", "dlhw", *argv], check=True)
    return run_dir


def audio_rate(synth: Synthesizer, texts: list[str], batch: int, repeats: int) -> tuple[float, float]:
    """(seconds of audio per second, seconds of audio) for ``texts`` in batches of ``batch``."""
    synth.synthesize(texts[:batch])  # warm-up
    best = float("inf")
    audio = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        audio = 0.0
        for i in range(0, len(texts), batch):
            audio += sum(len(s.waveform) for s in synth.synthesize(texts[i:i + batch])) / 16000
        best = min(best, time.perf_counter() - start)
    return audio / best, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a tts run with an ONNX export (default: train the tiny one)")
    parser.add_argument("--texts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    texts = make_sentences(args.texts, seed=2026)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = ensure_run(args.run, Path(tmp))
        rows = []
        for backend in ("torch", "onnxruntime"):
            synth = load_synthesizer(run_dir, backend)  # type: ignore[arg-type]
            single, audio = audio_rate(synth, texts, 1, args.repeats)
            batched, _ = audio_rate(synth, texts, args.batch_size, args.repeats)
            rows.append((backend, single, batched, audio))
    base = rows[0][1]
    print(f"{args.texts} sentences, {rows[0][3]:.1f} s of audio; batch size {args.batch_size}; "
          f"best of {args.repeats}; threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    print("| backend | one at a time (s audio / s) | batched (s audio / s) | batched / one at a time | vs torch one at a time |")
    print("|---|---:|---:|---:|---:|")
    for backend, single, batched, _ in rows:
        print(f"| {backend} | {single:.2f} | {batched:.2f} | {batched / single:.2f}x | {batched / base:.2f}x |")


if __name__ == "__main__":
    main()
