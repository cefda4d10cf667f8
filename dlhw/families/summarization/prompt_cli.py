"""``dlhw prompt summarize``: zero-, one- and few-shot summarization with a pretrained model."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dlhw.config import load_yaml
from dlhw.core.options import preset_option, set_option
from dlhw.core.registry import FAMILIES


def _recipe_of_dataset() -> dict[str, str]:
    """``--dataset`` name -> the summarization recipe whose config reads it (its ``data.dataset``)."""
    return {str(load_yaml(r.config_file)["data"]["dataset"]): r.name for r in FAMILIES["summarization"].recipes}


RECIPE_OF = _recipe_of_dataset()


@click.command("summarize")
@click.option("--model", "model_ref", default=None,
              help="Hub id, local model folder or summarization run directory [default: the recipe's "
                   "prompting.model: Llama-3.2-1B (full), the tiny base (tiny)].")
@click.option("--dataset", type=click.Choice(list(RECIPE_OF)), default="cnn_dailymail", show_default=True,
              help="cnn_dailymail (articles) or tweetsumm (support dialogues).")
@click.option("--shots", type=click.IntRange(min=0), default=0, show_default=True,
              help="Examples in the prompt: 0 zero-shot, 1 one-shot, 3 few-shot (drawn from train with the seed).")
@preset_option
@set_option
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Local data in DIR (as `dlhw train --data-dir`).")
@click.option("--quantization", type=click.Choice(["auto", "none", "nf4", "int8"]), default="auto", show_default=True,
              help="Hub models: auto = 4-bit NF4 on CUDA, none on CPU; nf4 / int8 need CUDA (bitsandbytes).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/prompt-summarize/DATASET-Kshot-TIMESTAMP].")
@click.option("--seed", type=int, default=None, help="Override the config's seed (examples, splits).")
def summarize_prompt_cmd(model_ref: str | None, dataset: str, shots: int, preset: str, overrides: tuple[str, ...],
                         data_dir: str | None, quantization: str, output_dir: str | None, seed: int | None) -> None:
    """Summarize the test split with a pretrained model and K examples from the train split, score it
    (ROUGE-1/2/L/Lsum with 95% intervals, BERTScore) and write a run directory (config.yaml, shots.jsonl,
    predictions_test.jsonl, eval.json, report.md) that `dlhw report compare` reads next to SFT and
    LoRA runs. Instruct models get their chat template, base models a plain template.

    \b
    Examples:
      dlhw prompt summarize --preset tiny --shots 0
      dlhw prompt summarize --preset tiny --shots 3 --dataset tweetsumm
      dlhw prompt summarize --model meta-llama/Llama-3.2-1B --shots 3     # 4-bit on CUDA
    """
    from dlhw.config import dump_yaml, to_dict
    from dlhw.core.atomic import write_text_atomic
    from dlhw.core.registry import data_dir_overrides, resolve_config
    from dlhw.core.runs import RunFiles, prepare_run_dir, removed_if_failed
    from dlhw.families.summarization.prompt import run_prompting

    recipe = RECIPE_OF[dataset]
    extra = [f"prompting.shots={shots}", f"model.quantization={quantization}"]
    if data_dir:
        extra = [*data_dir_overrides(FAMILIES["summarization"], data_dir), *extra]
    if model_ref:
        extra.append(f"prompting.model={model_ref}")
    config = resolve_config(recipe, preset, None, [*extra, *overrides], seed)
    run_dir = Path(output_dir) if output_dir else (
        Path("runs") / "prompt-summarize" / f"{dataset}-{shots}shot-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    prepare_run_dir(run_dir, overwrite=False, resume=False)
    write_text_atomic(RunFiles(run_dir).config, dump_yaml(to_dict(config)))
    click.echo(f"run directory: {run_dir}")
    with removed_if_failed(run_dir):
        summary = run_prompting(config, run_dir)
    click.echo(f"done: {summary['label']} on {dataset}; report in {run_dir / 'report.md'}")
