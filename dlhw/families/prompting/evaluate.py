"""Prompting strategies on BBH sports_understanding: prompts, answer extraction, votes, accuracy.

A prompt run (:func:`run_prompting`) scores every requested strategy on the test items and writes
a run directory: ``config.yaml``, ``shots.json`` (the few-shot exemplars, drawn once with the
run's seed and fixed for every item), ``predictions/<strategy>.csv`` (``input, target, prediction,
extracted, raw_output, votes``), ``eval.json``, ``train_summary.json`` (what ``dlhw report compare``
reads: the model and its size; nothing is trained), ``plots/`` and ``report.md``.

Answer extraction (:func:`extract_answer`), in order: the last "the answer is X"; a reply that
starts with a label ("No."); every whole-word label mention agreeing ("not", "know", "implausible"
never count as "no" / "plausible"); else ``unknown``. ``plausible`` / ``implausible`` map to yes / no.
``unknown`` counts as wrong and is reported on its own.

Self-consistency (:func:`majority_vote`): the majority of the chains' non-unknown answers; a tie
goes to the tied label whose first chain came earliest in sampling order, and ties are counted.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlhw.config import dump_yaml, from_dict, to_dict
from dlhw.core.atomic import write_json_atomic, write_text_atomic
from dlhw.core.runs import RunFiles, read_eval, run_config_dict
from dlhw.errors import ConfigError, DataError
from dlhw.families.prompting.config import PromptConfig
from dlhw.families.prompting.data import BbhData, BbhExample, build_prompt, load_bbh_data

LABELS = ("yes", "no")
UNKNOWN = "unknown"
CSV_FIELDS = ("input", "target", "prediction", "extracted", "raw_output", "votes")
SHOTS_FILE = "shots.json"
"""This family's own run file (beside those :class:`dlhw.core.runs.RunFiles` names): the drawn shots."""
_LABEL = r"(not plausible|implausible|plausible|yes|no)"
_ANSWER_IS = re.compile(r"answer is\W{0,3}" + _LABEL + r"\b", re.IGNORECASE)
_LEADING = re.compile(r"^\W*" + _LABEL + r"\b", re.IGNORECASE)
_MENTION = re.compile(r"\b" + _LABEL + r"\b", re.IGNORECASE)
_TO_LABEL = {"yes": "yes", "no": "no", "plausible": "yes", "implausible": "no", "not plausible": "no"}


def extract_answer(text: str) -> str:
    """``yes``, ``no`` or ``unknown`` from a generated answer (rules in the module docstring)."""
    found = _ANSWER_IS.findall(text)
    if found:
        return _TO_LABEL[found[-1].lower()]
    leading = _LEADING.match(text)
    if leading:
        return _TO_LABEL[leading.group(1).lower()]
    mentions = {_TO_LABEL[m.lower()] for m in _MENTION.findall(text)}
    return mentions.pop() if len(mentions) == 1 else UNKNOWN


@dataclass
class Vote:
    answer: str
    counts: dict[str, int]
    """Chains per answer, ``unknown`` included."""
    tie: bool


def majority_vote(answers: list[str]) -> Vote:
    """Majority of the non-unknown answers; a tie goes to the tied label sampled first."""
    counts = Counter(answers)
    known = {a: c for a, c in counts.items() if a != UNKNOWN}
    full = {label: counts.get(label, 0) for label in (*LABELS, UNKNOWN)}
    if not known:
        return Vote(UNKNOWN, full, False)
    top = max(known.values())
    leaders = {a for a, c in known.items() if c == top}
    return Vote(next(a for a in answers if a in leaders), full, len(leaders) > 1)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``correct / n``."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def score_rows(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Accuracy (unknown = wrong) with its 95% interval, unknown rate, predicted-label counts, ties."""
    n = len(rows)
    correct = sum(r["prediction"] == r["target"] for r in rows)
    low, high = wilson_interval(correct, n)
    labels = Counter(r["prediction"] for r in rows)
    out = {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0, "ci_low": low, "ci_high": high,
           "unknown_rate": labels.get(UNKNOWN, 0) / n if n else 0.0,
           "predicted": {label: labels.get(label, 0) for label in (*LABELS, UNKNOWN)},
           "targets": dict(Counter(r["target"] for r in rows))}
    votes = [json.loads(r["votes"]) for r in rows if r.get("votes")]
    if votes:
        out["ties"] = sum(v["tie"] for v in votes)
        out["samples"] = sum(v[k] for k in (*LABELS, UNKNOWN) for v in votes[:1])
    return out


def draw_shots(pool: list[BbhExample], k: int, seed: int) -> list[BbhExample]:
    """``k`` exemplars drawn from the pool with ``seed`` (the same for every item of a run)."""
    if len(pool) < k:
        raise DataError(f"few-shot: the pool holds {len(pool)} items after removing test items, fewer than "
                        f"--shots {k}")
    return random.Random(seed).sample(pool, k)


def strategy_rows(strategy: str, data: BbhData, shots: list[BbhExample], generator: Any,
                  config: PromptConfig) -> list[dict[str, str]]:
    """Generate and extract the answers of one strategy for every test item."""
    p = config.prompting
    prompts = [build_prompt(strategy, item.input, shots, data.cot) for item in data.test]
    rows = []
    if strategy == "cot-sc":
        chains = generator.sample(prompts, p.samples, p.cot_tokens, p.temperature, p.top_p, config.seed, desc=strategy)
        for item, texts in zip(data.test, chains, strict=True):
            answers = [extract_answer(t) for t in texts]
            vote = majority_vote(answers)
            rows.append({"input": item.input, "target": item.target, "prediction": vote.answer,
                         "extracted": " ".join(answers), "raw_output": json.dumps(texts, ensure_ascii=False),
                         "votes": json.dumps({**vote.counts, "tie": vote.tie})})
        return rows
    if strategy in ("answer-only", "few-shot") and p.scoring == "rank":
        texts = generator.rank(prompts, LABELS, desc=strategy)
    else:
        limit = p.cot_tokens if strategy.startswith("cot") else p.answer_tokens
        texts = generator.greedy(prompts, limit, desc=strategy)
    for item, text in zip(data.test, texts, strict=True):
        label = extract_answer(text)
        rows.append({"input": item.input, "target": item.target, "prediction": label, "extracted": label,
                     "raw_output": text, "votes": ""})
    return rows


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    # atomic: `dlhw evaluate` rewrites this file in place, and the raw outputs in it cost a model run
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def metrics_of(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The flat ``eval.json`` "metrics": accuracy and unknown rate per strategy, and the best one."""
    metrics: dict[str, Any] = {}
    for strategy, r in results.items():
        key = strategy.replace("-", "_")
        metrics[f"accuracy_{key}"] = r["accuracy"]
        metrics[f"unknown_rate_{key}"] = r["unknown_rate"]
    best = max(results, key=lambda s: results[s]["accuracy"])
    metrics["best_accuracy"] = results[best]["accuracy"]
    metrics["best_strategy"] = best
    return metrics


def write_evaluation(run_dir: Path, results: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """``eval.json``, the plots and ``report.md`` from per-strategy results."""
    from dlhw.families.prompting.report import plot_accuracy, plot_labels
    from dlhw.reports.run_report import write_run_report

    files = RunFiles(run_dir)
    for strategy, r in results.items():
        plot_labels(r["predicted"], files.plot(f"labels_{strategy}.png"), strategy, r["targets"])
    plot_accuracy(results, files.plot("accuracy.png"))
    evaluation = {"metrics": metrics_of(results), "strategies": results, **extra}
    write_json_atomic(files.eval, evaluation)
    write_run_report(run_dir)
    return evaluation


def _load_data(config: PromptConfig) -> BbhData:
    try:
        return load_bbh_data(config.data)
    except DataError as err:
        if config.data.source != "hub":
            raise
        raise DataError(f"{err}. The full preset needs the model {config.model.name!r} and the datasets "
                        f"{config.data.hf_dataset!r} ({config.data.hf_config}) and {config.data.pool_dataset!r} "
                        "from the Hugging Face Hub; offline, pass the BIG-Bench Hard repository with --data-dir "
                        "DIR and a local model with --model DIR, or run --preset tiny") from None


def run_prompting(config: PromptConfig, run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run every strategy of ``config`` and write the run directory; return the evaluation."""
    from dlhw.core.devices import resolve_device
    from dlhw.families.prompting.infer import PromptGenerator, load_prompt_generator
    from dlhw.families.prompting.model import (
        load_prompt_model,
        parameter_count,
        save_export_reference,
        save_run_model,
    )

    start = time.perf_counter()
    data = _load_data(config)
    p = config.prompting
    if p.backend in ("onnxruntime", "tensorrt"):
        from dlhw.core.runs import export_dir_of

        if config.model.name is None:
            raise ConfigError(f"--backend {p.backend}: pass the export (or the run holding it) with --model")
        export = export_dir_of(config.model.name)
        generator = load_prompt_generator(export, p.backend, p.device, p.batch_size, export, progress)
        save_export_reference(export, generator.tokenizer, RunFiles(run_dir).model)
        model_info: dict[str, Any] = {"base": str(export), "backend": p.backend, "parameters": None}
    else:
        try:
            loaded = load_prompt_model(config.model, resolve_device(p.device))
        except DataError as err:
            raise DataError(f"{err}; offline, pass a local model folder with --model DIR, or run --preset tiny "
                            f"(datasets: {config.data.hf_dataset}, {config.data.pool_dataset})") from None
        save_run_model(loaded, RunFiles(run_dir).model)
        generator = PromptGenerator(loaded.model, loaded.tokenizer, loaded.kind, p.batch_size, progress)
        model_info = {"base": loaded.name, "kind": loaded.kind, "backend": "torch",
                      "parameters": parameter_count(loaded.model)}
    files = RunFiles(run_dir)
    write_text_atomic(files.config, dump_yaml(to_dict(config)))
    shots = draw_shots(data.pool, p.shots, config.seed) if "few-shot" in p.strategies else []
    write_json_atomic(run_dir / SHOTS_FILE, {
        "seed": config.seed, "shots": [s.__dict__ for s in shots],
        "cot_exemplars": [{"input": q, "rationale": r} for q, r in data.cot.exemplars]})
    results = {}
    timings = {}
    for strategy in p.strategies:
        t0 = time.perf_counter()
        rows = strategy_rows(strategy, data, shots, generator, config)
        timings[strategy] = time.perf_counter() - t0
        write_rows(run_dir / "predictions" / f"{strategy}.csv", rows)
        results[strategy] = {**score_rows(rows), "seconds": round(timings[strategy], 2)}
    data_info = {"source": data.source, "test_items": len(data.test), "pool": data.pool_source,
                 "pool_items": len(data.pool), "removed_from_pool": data.removed_from_pool,
                 "removed_examples": data.removed_examples, "shots": p.shots if shots else 0,
                 "cot_exemplars": len(data.cot.exemplars)}
    summary = {"recipe": config.recipe, "label": f"{config.recipe} ({model_info['base']})",
               "model": {**model_info, "trainable_parameters": 0}, "data": data_info,
               "prompting": {"wall_time_s": round(time.perf_counter() - start, 2), "seconds": timings}}
    write_json_atomic(files.train_summary, summary)
    return write_evaluation(run_dir, results, {"data": data_info})


def evaluate_prompt_run(run_dir: Path) -> dict[str, Any]:
    """Re-score a prompt run from its saved outputs (nothing is generated again).

    Each ``predictions/<strategy>.csv`` is read back, every raw output is extracted anew (and the
    self-consistency chains re-voted), and ``eval.json``, the plots and ``report.md`` are rewritten:
    a change to the extraction rules reaches old runs without rerunning the model.
    """
    run_dir = Path(run_dir)
    config: PromptConfig = from_dict(PromptConfig, run_config_dict(run_dir))
    results = {}
    for strategy in config.prompting.strategies:
        path = run_dir / "predictions" / f"{strategy}.csv"
        if not path.is_file():
            raise ConfigError(f"{path}: missing; rerun `dlhw prompt bbh-sports --strategy {strategy}`")
        rows = read_rows(path)
        for row in rows:
            if row["votes"]:
                answers = [extract_answer(t) for t in json.loads(row["raw_output"])]
                vote = majority_vote(answers)
                row.update(prediction=vote.answer, extracted=" ".join(answers),
                           votes=json.dumps({**vote.counts, "tie": vote.tie}))
            else:
                row["prediction"] = row["extracted"] = extract_answer(row["raw_output"])
        write_rows(path, rows)
        results[strategy] = score_rows(rows)
    previous: dict[str, Any] = dict(read_eval(run_dir))  # this family's own keys too (strategies, data)
    for strategy, old in previous.get("strategies", {}).items():
        if strategy in results and "seconds" in old:
            results[strategy]["seconds"] = old["seconds"]
    return write_evaluation(run_dir, results, {"data": previous.get("data", {})})
