"""Batch captioning on the local engine vs the Ray engine with 1 and 2 workers, and what a Ray job costs
to start.

The model is caption_throughput.py's: a caption-transformer with the full preset's sizes
(EfficientNet-B0 at 224 px, a 3-layer 512-wide decoder, random weights). Each variant is the command
a user runs, `dlhw caption DIR --model RUN --out FILE.jsonl --batch-size B [--engine ray --workers W]`,
timed end to end in a fresh process, once on N images and once on one image: the one-image job is
the fixed cost of a job (Python, imports, the model; for Ray also starting the instance and its
actors, each loading the model), and N-1 images over the difference is the throughput once running.
The local engine decodes images in 2 DataLoader workers and runs torch on all cores; a Ray actor
reserves one CPU, so Ray gives it one thread (OMP_NUM_THREADS=1) and it decodes its own images.
The Ray jobs start their own local instance, as `--engine ray` does by default. Every job's records
are compared with the local engine's.

    python benchmarks/ray_engine.py [--images 384] [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from caption_throughput import make_run  # noqa: E402

from dlhw.cli.env_cmd import cpu_model  # noqa: E402
from dlhw.families.caption.scenes import make_scenes  # noqa: E402

VARIANTS = {"local": ["--engine", "local"], "ray, 1 worker": ["--engine", "ray", "--workers", "1"],
            "ray, 2 workers": ["--engine", "ray", "--workers", "2"]}


def job(run: Path, images: Path, out: Path, batch_size: int, engine: list[str]) -> float:
    """Seconds for one `dlhw caption` job from start to exit (a fresh process; `out` replaced)."""
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "dlhw", "caption", str(images), "--model", str(run), "--out", str(out),
               "--batch-size", str(batch_size), *engine]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="Each job timed this often; the best counts.")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run, _ = make_run(root)
        many, one = root / "many", root / "one"
        many.mkdir()
        one.mkdir()
        for scene in make_scenes(args.images, seed=3):
            scene.render(224).save(many / f"{scene.image_id}.png")
        (one / "a.png").write_bytes(next(iter(sorted(many.iterdir()))).read_bytes())
        results: dict[str, tuple[float, float]] = {}
        records: dict[str, str] = {}
        for name, engine in VARIANTS.items():
            out = root / f"{name.replace(' ', '').replace(',', '-')}.jsonl"
            t_one = min(job(run, one, out, args.batch_size, engine) for _ in range(args.repeats))
            t_many = min(job(run, many, out, args.batch_size, engine) for _ in range(args.repeats))
            results[name] = (t_one, t_many)
            records[name] = out.read_text()
            print(f"{name}: 1 image {t_one:.1f} s, {args.images} images {t_many:.1f} s", flush=True)

    n = args.images
    local_one, local_many = results["local"]
    local_rate = (n - 1) / (local_many - local_one)
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average before {load_before}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"caption-transformer, EfficientNet-B0 224 px + 3x512 decoder (random weights), {n} images, batch "
          f"{args.batch_size}, greedy; best of {args.repeats}")
    print(f"{'':16}{'job, 1 image (s)':>18}{f'job, {n} images (s)':>20}{'images/s, whole job':>21}"
          f"{'images/s running':>18}{'vs local':>10}")
    for name, (t_one, t_many) in results.items():
        rate = (n - 1) / (t_many - t_one)
        print(f"{name:16}{t_one:>18.1f}{t_many:>20.1f}{n / t_many:>21.1f}{rate:>18.1f}{rate / local_rate:>9.2f}x")
    for name in VARIANTS:
        if name != "local":
            extra = results[name][0] - local_one
            print(f"{name}: starting Ray and its actors adds {extra:.1f} s per job")
    same = {name: [json.loads(line) for line in text.splitlines()] == [json.loads(line) for line in
                                                                         records["local"].splitlines()]
            for name, text in records.items()}
    print("records equal to the local engine's: " + ", ".join(f"{name} {'yes' if ok else 'NO'}"
                                                              for name, ok in same.items() if name != "local"))


if __name__ == "__main__":
    main()
