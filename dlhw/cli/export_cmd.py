"""``dlhw export RUN --onnx [--tensorrt] [--fp16] [--int8]``."""

from __future__ import annotations

import click

from dlhw.core.options import family_options, options_epilog
from dlhw.errors import ConfigError


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--onnx", "onnx_flag", is_flag=True, help="Export the model to ONNX (required).")
@click.option("--tensorrt", is_flag=True,
              help="Also build TensorRT engines (ONNX Runtime's TensorRT provider; NVIDIA GPU only).")
@click.option("--fp16", is_flag=True, help="Build fp16 TensorRT engines (with --tensorrt).")
@click.option("--opset", type=click.IntRange(min=13), default=None,
              help="ONNX opset [default: the family's].")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Export directory [default: RUN/export/onnx].")
@click.option("--atol", type=float, default=None,
              help="Largest torch vs ONNX Runtime difference accepted [default: the family's tolerance].")
@click.option("--int8", is_flag=True,
              help="Also write an int8 (dynamic quantization) model for ONNX Runtime on CPU and report the "
                   "quality change on the test split (families that declare it).")
@click.option("--force", is_flag=True,
              help="With --int8: write the int8 model even when the family's quality gate refuses it.")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Largest batch the TensorRT shape profiles cover.")
@click.pass_context
def export_cmd(ctx: click.Context, run: str, onnx_flag: bool, **_: object) -> None:
    """Export run directory RUN to ONNX and check it against torch.

    What is exported and how it is checked is the run's family's: the same inputs go through
    torch and ONNX Runtime, and beyond the family's tolerance (or --atol) the export fails with
    the measured difference and leaves nothing behind. export.json names the files, the parity
    numbers and the settings. Each family takes only the options that mean something for it.
    """
    from dlhw.backends.export import check_export_request, export_run
    from dlhw.core.registry import family_of_run
    from dlhw.core.runs import EXPORT_META, read_json, require_run_dir

    if not onnx_flag:
        raise ConfigError("say what to export: --onnx (optionally with --tensorrt)")
    family = family_of_run(require_run_dir(run))
    given = ctx.params
    check_export_request(family, tensorrt=given["tensorrt"], fp16=given["fp16"], int8=given["int8"],
                         force=given["force"])
    options = family_options(ctx, family, "export", shared=("run", "onnx_flag"))
    out_dir = export_run(run, **options)
    meta = read_json(out_dir / EXPORT_META)
    click.echo(f"exported to {out_dir}: {', '.join(meta['files'].values())}")
    for part in ("parity", "int8"):
        if part in meta:
            click.echo(meta[part]["summary"])
    if "tensorrt" in meta:
        click.echo(f"TensorRT engines cached in {out_dir / 'trt_cache'}")


export_cmd.epilog = options_epilog(export_cmd, "export")
