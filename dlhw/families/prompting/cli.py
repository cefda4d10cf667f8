"""``dlhw prompt bbh-sports``: prompting strategies on BIG-Bench Hard sports_understanding."""

from __future__ import annotations

from pathlib import Path

import click

from dlhw.core.options import DTYPES, config_option, preset_option, set_option

STRATEGY_CHOICES = ("answer-only", "few-shot", "cot", "cot-few-shot", "cot-sc", "all")


@click.command("bbh-sports")
@click.option("--model", "model", default=None, metavar="ID|DIR",
              help="Seq2seq id (google/flan-t5-small/base/large/xl), a causal LM with a chat template, a local "
                   "folder, or (with --backend onnxruntime) an export or the run holding it "
                   "[default: the preset's: flan-t5-large, tiny = the tiny T5].")
@click.option("--strategy", "strategies", multiple=True, type=click.Choice(STRATEGY_CHOICES), default=("all",),
              show_default=True, help="Strategy to run (repeatable); all = the five.")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="Few-shot exemplars [default: 3].")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Self-consistency: chains per item [default: 10].")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Self-consistency sampling temperature [default: 0.7].")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Self-consistency nucleus threshold [default: 0.95].")
@click.option("--scoring", type=click.Choice(["generate", "rank"]), default=None,
              help="Answer-only and few-shot: free generation + extraction, or the more likely label "
                   "[default: generate].")
@click.option("--max-items", type=click.IntRange(min=1), default=None, help="Score only the first N test items.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Prompts per generation batch.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "tensorrt"]), default=None,
              help="Where the model runs; onnxruntime and tensorrt need --model EXPORT_OR_RUN (tensorrt: an "
                   "export made with --tensorrt, on an NVIDIA GPU) [default: torch].")
@click.option("--device", default=None, help="auto, cpu or cuda [default: auto].")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default=None,
              help="--backend torch: the model's precision (model.dtype); auto = bf16 on a CUDA GPU that supports it, "
                   "fp32 on the CPU (bf16 runs there too; fp16 is for CUDA) [default: auto].")
@click.option("--seed", type=int, default=None, help="Seeds the shots and the sampled chains [default: 42].")
@preset_option
@config_option
@set_option
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The BIG-Bench Hard repository (bbh/sports_understanding.json, "
                   "cot-prompts/sports_understanding.txt; optional pool.json in BIG-bench's task.json shape).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/bbh-sports/TIMESTAMP].")
@click.option("--overwrite", is_flag=True, help="Empty a non-empty --output-dir first.")
def bbh_sports_cmd(model: str | None, strategies: tuple[str, ...], shots: int | None, samples: int | None,
                   temperature: float | None, top_p: float | None, scoring: str | None, max_items: int | None,
                   batch_size: int | None, backend: str | None, device: str | None, dtype: str | None,
                   seed: int | None, preset: str, config_file: str | None, overrides: tuple[str, ...], data_dir: str | None,
                   output_dir: str | None, overwrite: bool) -> None:
    """Answer BBH sports_understanding with answer-only, few-shot, CoT, few-shot CoT and self-consistency
    prompts, and score each (nothing is trained).

    Writes a run directory: config.yaml, shots.json (the seeded shots, fixed for every item),
    predictions/STRATEGY.csv (input, target, prediction, extracted, raw_output, votes), eval.json
    (accuracy with a 95% interval and the unknown rate per strategy), plots/ (predicted labels per
    strategy, accuracy by strategy) and report.md. `dlhw report compare` compares such runs;
    `dlhw evaluate RUN` re-scores one from its saved outputs.

    \b
    Examples:
      dlhw prompt bbh-sports --preset tiny                          offline: tiny T5, embedded task
      dlhw prompt bbh-sports --strategy cot-sc --samples 10 --temperature 0.7 --top-p 0.95
      dlhw prompt bbh-sports --model google/flan-t5-base --strategy answer-only --strategy few-shot --seed 1
      dlhw prompt bbh-sports --model runs/bbh-sports/RUN --backend onnxruntime --strategy cot
    """
    from dlhw.core.devices import DTYPE_NAMES
    from dlhw.core.options import check_dtype
    from dlhw.core.registry import FAMILIES, data_dir_overrides, resolve_config
    from dlhw.core.runs import default_run_dir, prepare_run_dir, removed_if_failed
    from dlhw.families.prompting.config import STRATEGIES
    from dlhw.families.prompting.evaluate import run_prompting

    chosen = list(STRATEGIES) if "all" in strategies else [s for s in STRATEGIES if s in strategies]
    flags = {"model.name": model, "prompting.shots": shots, "prompting.samples": samples,
             "prompting.temperature": temperature, "prompting.top_p": top_p, "prompting.scoring": scoring,
             "data.max_items": max_items, "prompting.batch_size": batch_size, "prompting.backend": backend,
             "prompting.device": device, "model.dtype": DTYPE_NAMES.get(dtype, dtype) if dtype else None}
    items = [f"prompting.strategies=[{','.join(chosen)}]"]
    items += [f"{key}={value}" for key, value in flags.items() if value is not None]
    if data_dir:
        items = [*data_dir_overrides(FAMILIES["prompting"], data_dir), *items]
    config = resolve_config("bbh-sports", preset, config_file, [*items, *overrides], seed)
    check_dtype(dtype or "auto", config.prompting.backend)
    if config.prompting.backend == "tensorrt":
        from dlhw.backends.tensorrt import require_tensorrt

        require_tensorrt()  # before the run directory: a machine without TensorRT leaves nothing behind
    run_dir = Path(output_dir) if output_dir else default_run_dir("bbh-sports")
    prepare_run_dir(run_dir, overwrite=overwrite, resume=False)
    click.echo(f"run directory: {run_dir}", err=True)
    with removed_if_failed(run_dir):
        evaluation = run_prompting(config, run_dir)
    for name, r in evaluation["strategies"].items():
        click.echo(f"{name:<13} accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]  "
                   f"unknown {r['unknown_rate']:.3f}" + (f"  ties {r['ties']}" if "ties" in r else ""))
    click.echo(f"wrote {run_dir / 'eval.json'}, {run_dir / 'predictions'}/, {run_dir / 'plots'}/ and "
               f"{run_dir / 'report.md'}")
