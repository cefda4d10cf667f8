"""``dlhw caption PATHS... --model RUN|EXPORT_DIR --out FILE``."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from dlhw.batch.options import Engine, engine_options
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


@click.command()
@click.argument("paths", nargs=-1, required=True)
@model_option("A caption run directory (torch), or an export directory / a run with export/onnx (onnxruntime, "
              "tensorrt).")
@backend_option()
@device_option
@dtype_option
@batch_size_option(32, "Images captioned together.")
@click.option("--beam-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="1 = greedy; K > 1 = beam search.")
@out_option()
@shard_option
@engine_options
@click.option("--num-workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader workers decoding and resizing images (local engine; Ray actors decode their own).")
@click.pass_context
def caption_cmd(ctx: click.Context, paths: tuple[str, ...], model_path: str, backend: str, device: str, dtype: str,
                batch_size: int, beam_size: int, out: str, shard: str | None, engine: Engine, num_workers: int) -> None:
    """Caption images: files, directories (searched recursively) and globs.

    Each batch's captions are written and flushed as soon as it is done; a rerun with the same
    --out skips images already recorded. An unreadable input (corrupt, truncated, empty, not an
    image) becomes an error record with the reason and the job goes on.

    \b
    Exit codes: 0 every image captioned; 1 some inputs failed (see their error records);
                2 usage error (bad flag, path or model).
    """
    from dlhw.backends import open_export
    from dlhw.batch.runner import (
        IMAGE_EXTENSIONS,
        check_out,
        expand_inputs,
        parse_shard,
        predict_into,
    )
    from dlhw.core.devices import placement_line
    from dlhw.families.caption.infer import open_predictor

    check_dtype(dtype, backend)
    shard_spec, target = parse_shard(shard), check_out(Path(out))  # usage errors first, then the model
    images = {p: p for p in expand_inputs(paths, IMAGE_EXTENSIONS, out=target)}
    if not engine.ray:  # Ray actors open the model on their own nodes
        providers = None if backend == "torch" else open_export(model_path, backend, device).providers
        click.echo(placement_line(backend, device, dtype, providers), err=True)
    summary, lines = predict_into(target, partial(open_predictor, model_path, backend, device, beam_size, dtype), images,
                                  batch_size, shard=shard_spec, num_workers=num_workers, engine=engine, desc="captioning",
                                  unit="img", noun="images")
    for line in lines:
        click.echo(line, err=True)
    ctx.exit(summary.exit_code)
