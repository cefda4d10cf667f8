"""``dlhw export RUN --onnx [--tensorrt] [--fp16] [--int8]`` and ``dlhw export RUN --hf [--out DIR]``."""

from __future__ import annotations

import click

from dlhw.core.options import family_options, options_epilog
from dlhw.errors import ConfigError


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--onnx", "onnx_flag", is_flag=True, help="Export the model to ONNX.")
@click.option("--hf", "hf_flag", is_flag=True,
              help="Export a Hugging Face folder instead: save_pretrained safetensors with adapters merged (a PEFT "
                   "adapter folder for soft prompts), tokenizer, generation config and a model card README.md.")
@click.option("--tensorrt", is_flag=True,
              help="Also build TensorRT engines (ONNX Runtime's TensorRT provider; NVIDIA GPU only).")
@click.option("--fp16", is_flag=True, help="Build fp16 TensorRT engines (with --tensorrt).")
@click.option("--opset", type=click.IntRange(min=13), default=None,
              help="ONNX opset [default: the family's].")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Export directory [default: RUN/export/onnx, or RUN/export/hf with --hf].")
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
def export_cmd(ctx: click.Context, run: str, onnx_flag: bool, hf_flag: bool, **_: object) -> None:
    """Export run directory RUN to ONNX and check it against torch, or (--hf) as a Hugging Face folder.

    What is exported and how it is checked is the run's family's: the same inputs go through
    torch and ONNX Runtime, and beyond the family's tolerance (or --atol) the export fails with
    the measured difference and leaves nothing behind. export.json names the files, the parity
    numbers and the settings. Each family takes only the options that mean something for it.

    --hf writes what `from_pretrained` loads offline, checked against the run (the same greedy
    tokens, or logits): LoRA-family adapters merged, partial and full runs as trained; soft prompts
    (prompt, prefix, P-tuning) cannot be merged into weights, so they export as a PEFT adapter
    folder naming the base model. Every --hf folder carries a model card (README.md with YAML
    metadata: base model, datasets, method, hyper-parameters, eval.json's metrics).
    """
    from dlhw.backends.export import check_export_request, export_run
    from dlhw.core.registry import family_of_run
    from dlhw.core.runs import EXPORT_META, read_json, require_run_dir

    if onnx_flag == hf_flag:
        raise ConfigError("say what to export: --onnx (optionally with --tensorrt) or --hf" if not onnx_flag
                          else "--onnx and --hf are two exports; run `dlhw export RUN` once for each")
    family = family_of_run(require_run_dir(run))
    if hf_flag:
        _export_hf(ctx, run, family)
        return
    given = ctx.params
    check_export_request(family, tensorrt=given["tensorrt"], fp16=given["fp16"], int8=given["int8"],
                         force=given["force"])
    options = family_options(ctx, family, "export", shared=("run", "onnx_flag", "hf_flag"))
    out_dir = export_run(run, **options)
    meta = read_json(out_dir / EXPORT_META)
    click.echo(f"exported to {out_dir}: {', '.join(meta['files'].values())}")
    for part in ("parity", "int8"):
        if part in meta:
            click.echo(meta[part]["summary"])
    if "tensorrt" in meta:
        click.echo(f"TensorRT engines cached in {out_dir / 'trt_cache'}")


def _export_hf(ctx: click.Context, run: str, family: object) -> None:
    from click.core import ParameterSource

    from dlhw.backends.export import check_hf_request, export_hf

    check_hf_request(family)  # type: ignore[arg-type]
    for name in ("tensorrt", "fp16", "opset", "atol", "int8", "force", "max_batch"):
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} is an option of the ONNX export; --hf takes --out only")
    out_dir, made = export_hf(run, out=ctx.params["out"])
    click.echo(f"exported to {out_dir}: {made.form} for {made.library}"
               + (f" (base model {made.base_model})" if made.base_model else ""))
    click.echo(f"check: {made.check}")
    click.echo(f"model card: {out_dir / 'README.md'}")


export_cmd.epilog = options_epilog(export_cmd, "export")
