"""``dlhw caption PATHS... --model RUN|EXPORT_DIR --out FILE``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A run directory, or an export directory (onnxruntime / tensorrt).")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default="torch",
              show_default=True, help="Where the model runs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--beam-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="1 = greedy; K > 1 = beam search.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Results file: .jsonl or .csv. An existing file is continued, not overwritten.")
@click.option("--shard", default=None, metavar="i/n",
              help="Process only shard i of n (deterministic by path; run n jobs for the whole set).")
@click.option("--num-workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader workers decoding and resizing images.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (torch and onnxruntime).")
@click.pass_context
def caption_cmd(ctx: click.Context, paths: tuple[str, ...], model_path: str, backend: str, batch_size: int,
                beam_size: int, out: str, shard: str | None, num_workers: int, device: str) -> None:
    """Caption images: files, directories (searched recursively) and globs.

    Each batch's captions are written and flushed as soon as it is done; a rerun with the same
    --out skips images already recorded. An unreadable input (corrupt, truncated, empty, not an
    image) becomes an error record with the reason and the job goes on.

    \b
    Exit codes: 0 every image captioned; 1 some inputs failed (see their error records);
                2 usage error (bad flag, path or model).
    """
    import torch

    from dlhw.batch.runner import (
        IMAGE_EXTENSIONS,
        ResultWriter,
        expand_inputs,
        in_shard,
        parse_shard,
        run_batch_job,
    )
    from dlhw.families.caption.infer import load_captioner, load_image_tensor
    from dlhw.families.caption.model import image_transform

    shard_spec = parse_shard(shard)
    writer = ResultWriter(Path(out), "caption")
    if backend == "tensorrt":
        from dlhw.backends.tensorrt import require_tensorrt

        require_tensorrt()
    captioner = load_captioner(model_path, backend, device)  # type: ignore[arg-type]
    inputs = [p for p in expand_inputs(paths, IMAGE_EXTENSIONS) if in_shard(p, shard_spec)]
    transform = image_transform(captioner.spec)

    def load(path: Path) -> torch.Tensor:
        return load_image_tensor(path, transform)

    def process(batch: list[torch.Tensor]) -> list[dict[str, str]]:
        decoded = captioner.caption(torch.stack(batch), beam_size=beam_size)
        return [{"caption": " ".join(captioner.vocab.decode(row))} for row in decoded.tokens.tolist()]

    try:
        summary = run_batch_job(inputs, load, process, writer, batch_size, num_workers, desc="captioning",
                                unit="img")
    finally:
        writer.close()
    click.echo(summary.line("images"), err=True)
    ctx.exit(summary.exit_code)
