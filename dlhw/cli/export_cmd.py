"""``dlhw export RUN --onnx [--tensorrt] [--fp16]``."""

from __future__ import annotations

import json

import click

from dlhw.errors import ConfigError


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--onnx", "onnx_flag", is_flag=True, help="Export the model to ONNX (required).")
@click.option("--tensorrt", is_flag=True,
              help="Also build TensorRT engines (ONNX Runtime's TensorRT provider; NVIDIA GPU only).")
@click.option("--fp16", is_flag=True, help="Build fp16 TensorRT engines (with --tensorrt).")
@click.option("--opset", type=click.IntRange(min=13), default=None,
              help="ONNX opset [default: the family's, 17 for captioning, 18 for chat].")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Export directory [default: RUN/export/onnx].")
@click.option("--atol", type=float, default=None,
              help="Largest torch vs ONNX Runtime difference accepted [default: the family's tolerance].")
@click.option("--int8", is_flag=True,
              help="Also write an int8 (dynamic quantization) model for ONNX Runtime on CPU and report the "
                   "test perplexity change (chat).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Largest batch the TensorRT shape profiles cover.")
def export_cmd(run: str, onnx_flag: bool, tensorrt: bool, fp16: bool, opset: int | None, out: str | None,
               atol: float | None, int8: bool, max_batch: int) -> None:
    """Export run directory RUN to ONNX and check it against torch.

    Chat: model.onnx, a decoder with KV cache (optimum-onnx): LoRA-family adapters merged,
    prompt-tuning / P-tuning virtual tokens folded into the embedding matrix, the prefix-tuning
    prefix saved as initial past key/values (prefix.npz). Parity: the torch PEFT model and ONNX
    Runtime must produce the same greedy tokens on the check prompts.

    Captioning: encoder.onnx (pixels -> initial decoder state) and decoder_step.onnx (one step),
    dynamic batch, plus vocab.json and export.json (preprocessing, max length, special ids). The
    same inputs then go through torch and ONNX Runtime; beyond the tolerance the export fails
    with the measured difference and leaves nothing behind.
    """
    from dlhw.export.registry import export_run

    if not onnx_flag:
        raise ConfigError("say what to export: --onnx (optionally with --tensorrt)")
    out_dir = export_run(run, tensorrt=tensorrt, fp16=fp16, opset=opset, out=out, atol=atol, max_batch=max_batch,
                         int8=int8)
    meta = json.loads((out_dir / "export.json").read_text(encoding="utf-8"))
    parity = meta["parity"]
    diffs = parity["max_abs_diff"]
    click.echo(f"exported to {out_dir}: {', '.join(meta['files'].values())}")
    if diffs:
        click.echo("parity vs torch: max |diff| " + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
                   + f" (tolerance {parity['atol']:g}); greedy tokens equal")
    else:
        click.echo(f"parity vs torch: greedy tokens equal on {parity['equal_prompts']}/{parity['prompts']} prompts "
                   f"({parity['tokens_compared']} tokens)")
    if "int8" in meta:
        q = meta["int8"]
        click.echo(f"int8: {q['file']} ({q['bytes_int8'] / 2**20:.1f} MiB, fp32 {q['bytes_fp32'] / 2**20:.1f} MiB); "
                   f"test perplexity {q['test_perplexity_fp32']:.3f} -> {q['test_perplexity_int8']:.3f} "
                   f"({q['perplexity_change_percent']:+.2f}%)")
    if "tensorrt" in meta:
        click.echo(f"TensorRT engines cached in {out_dir / 'trt_cache'}")
