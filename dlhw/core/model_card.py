"""The model card of a ``dlhw export RUN --hf`` folder: ``README.md`` with YAML metadata the Hub reads.

The metadata (between ``---`` lines) names the base model, the datasets, the library and task, the
method and hyper-parameters, and the run's metrics from ``eval.json`` (as a ``model-index`` the Hub
shows, and plainly under ``dlhw.metrics``); the text says what the folder is, how to load it, what
it was checked against, and its intended use and limits. Every value comes from the run directory
and the family registry; nothing here knows a family.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import yaml

from dlhw.core.family import Family, HfExport
from dlhw.core.runs import read_eval, read_train_summary, run_config_dict

CARD_FILE = "README.md"

TRAIN_KEYS = ("epochs", "max_steps", "batch_size", "gradient_accumulation_steps", "learning_rate", "weight_decay",
              "warmup_ratio", "lr_scheduler", "max_grad_norm", "precision", "trainer_args")
"""``train.*`` keys the card lists as hyper-parameters (the rest is where and how the run logged)."""


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def card_metadata(family: Family, run_dir: Path, export: HfExport, datasets: list[str]) -> dict[str, Any]:
    """The card's YAML metadata (a plain mapping)."""
    config = run_config_dict(run_dir)
    evaluation = read_eval(run_dir)
    metrics = _numbers(evaluation.get("metrics", {}))
    labels = dict(family.metrics)
    hyper: dict[str, Any] = {}
    if family.train is not None:
        hyper = {k: config.get("train", {}).get(k) for k in TRAIN_KEYS if k in config.get("train", {})}
    if isinstance(config.get("method"), dict):
        hyper["method"] = config["method"]
    meta: dict[str, Any] = {
        "library_name": export.library,
        "pipeline_tag": export.pipeline_tag,
        "tags": list(dict.fromkeys(["dlhw", family.name, str(config.get("recipe", "")), export.method.split()[0]])),
    }
    if export.base_model:
        meta["base_model"] = export.base_model
    if datasets:
        meta["datasets"] = datasets
    if metrics:
        meta["model-index"] = [{
            "name": f"{config.get('recipe', family.name)} ({run_dir.name})",
            "results": [{
                "task": {"type": export.pipeline_tag},
                "dataset": {"name": ", ".join(datasets) or "dlhw embedded data (tiny preset)",
                            "type": datasets[0] if datasets else "embedded",
                            "split": str(evaluation.get("split", "test"))},
                "metrics": [{"type": k, "value": v, "name": labels.get(k, k)} for k, v in metrics.items()],
            }],
        }]
    meta["dlhw"] = {
        "recipe": config.get("recipe"), "preset": config.get("preset"), "family": family.name,
        "form": export.form, "method": export.method, "seed": config.get("seed"),
        "hyperparameters": hyper, "metrics": metrics, "eval_split": evaluation.get("split"),
    }
    return meta


def write_model_card(out_dir: Path, family: Family, run_dir: Path, export: HfExport, datasets: list[str]) -> Path:
    """``out_dir/README.md``: YAML metadata, then what the folder is, how to load it, its checks and limits."""
    meta = card_metadata(family, run_dir, export, datasets)
    summary = read_train_summary(run_dir)
    steps = summary.get("train", {}).get("global_step")
    trained = (f"fine-tuned with {export.method} for {steps} optimizer steps" if steps
               else "prompted as is, nothing trained" if family.train is None else export.method)
    base = f"`{export.base_model}`" if export.base_model else "a tiny base model dlhw built (not on the Hub)"
    data = ", ".join(f"`{d}`" for d in meta.get("datasets", [])) or "dlhw's embedded synthetic data"
    metrics = meta["dlhw"]["metrics"]
    labels = dict(family.metrics)
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# {meta['dlhw']['recipe']} ({family.name})", "",
        f"{family.summary[:1].upper()}{family.summary[1:]}: {base}, {trained}, on {data} "
        f"(recipe `{meta['dlhw']['recipe']}`, preset `{meta['dlhw']['preset']}`, seed {meta['dlhw']['seed']}).", "",
        f"This folder is a **{export.form}** exported by `dlhw export RUN --hf` from the run `{run_dir.name}`.", "",
        "## Use", "", "```python", export.load.strip(), "```", "",
        "## Evaluation", "",
    ]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {labels.get(k, k)} (`{k}`) | {v:.4g} |" for k, v in metrics.items()]
        lines += ["", f"On the {meta['dlhw']['eval_split'] or 'test'} split, from the run's `eval.json`."]
    else:
        lines.append("The run has no `eval.json` (run `dlhw evaluate RUN` before exporting to list its metrics).")
    lines += ["", f"Export check: {export.check}", "",
              "## Intended use and limits", "",
              f"A course model: trained to show how {export.method} behaves on this task, for study and comparison "
              "with the other dlhw recipes -- not evaluated for production use, safety or bias.",
              *(f"- {limit}" for limit in export.limits)]
    if meta["dlhw"]["preset"] == "tiny":
        lines.append("- Tiny preset: a small random-init model on synthetic data; its outputs only show the "
                     "pipeline works.")
    path = out_dir / CARD_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_card_metadata(path: Path) -> dict[str, Any]:
    """The YAML metadata of a card written by :func:`write_model_card`."""
    text = path.read_text(encoding="utf-8")
    _, front, _ = text.split("---\n", 2)
    return yaml.safe_load(front) or {}
