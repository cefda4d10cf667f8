"""Summarization evaluation: ROUGE-1/2/L/Lsum (multi-reference, 95% bootstrap intervals) and BERTScore.

Every test document is summarized in batches; ``predictions_test.jsonl`` holds each document's
summary, references and scores; ``eval.json`` the means, intervals and the settings that make the
numbers comparable (references per example, stemming, BERTScore model and rescaling). The tiny
preset scores BERTScore with the run's own tiny base: a real BERTScore computation, but with a
model no paper uses, so ``eval.json`` says the number is not comparable.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic
from dlhw.core.runs import RunFiles, read_eval
from dlhw.families.summarization.data import SummaryExample
from dlhw.families.summarization.infer import Summarizer
from dlhw.families.summarization.rouge import bertscore, corpus_rouge

logger = logging.getLogger(__name__)

BASE_DIR = "base_model"


def summarize_all(summarizer: Summarizer, examples: list[SummaryExample], batch_size: int, desc: str) -> list[Any]:
    """Summaries in the order of ``examples``: windows of :data:`~dlhw.lm.generate.LENGTH_WINDOW` batches,
    each decoded in batches of similar prompt length."""
    from dlhw.lm.generate import LENGTH_WINDOW

    summarizer.generator.batch_size = batch_size
    window = batch_size * LENGTH_WINDOW
    out = []
    with tqdm(total=len(examples), desc=desc, unit="doc") as bar:
        for i in range(0, len(examples), window):
            out += summarizer.summarize([e.document for e in examples[i:i + window]])
            bar.update(len(examples[i:i + window]))
    return out


def scoring_device(summarizer: Summarizer) -> str:
    """Where BERTScore runs: the device the summaries were generated on -- the torch model's, or the
    CUDA GPU of an ONNX Runtime session that runs there (CUDA or TensorRT provider) -- else the CPU."""
    generator = summarizer.generator
    device = getattr(generator, "device", None)
    if device is not None:
        return str(device)
    session = getattr(generator, "session", None)
    providers = session.get_providers() if session is not None else []
    for gpu in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        if gpu in providers:
            return f"cuda:{session.get_provider_options().get(gpu, {}).get('device_id', 0)}"  # type: ignore[union-attr]
    return "cpu"


def bertscore_settings(config: Any, run_dir: Path) -> tuple[str, int | None, bool]:
    """``(model, num_layers, comparable)``: the configured model, or the run's tiny base."""
    if config.eval.bertscore_model:
        return config.eval.bertscore_model, None, True
    base = run_dir / BASE_DIR
    layers = json.loads((base / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
    return str(base), int(layers), False


def score(summarizer: Summarizer, examples: list[SummaryExample], config: Any, run_dir: Path,
          label: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summaries of ``examples`` and their scores: ``(metrics, per-example rows)``."""
    summaries = summarize_all(summarizer, examples, config.eval.batch_size, f"summarizing ({label})")
    preds = [s.text for s in summaries]
    refs = [list(e.references) for e in examples]
    metrics, per = corpus_rouge(preds, refs, config.eval.language, config.eval.bootstrap, config.seed)
    model, layers, comparable = bertscore_settings(config, run_dir)
    bert = bertscore(preds, refs, model, config.eval.language, config.eval.bertscore_rescale, layers,
                     config.eval.batch_size, scoring_device(summarizer))
    per_f1 = bert.pop("per_example_f1")
    from dlhw.families.summarization.rouge import bootstrap_interval

    metrics.update(bert)
    metrics["bertscore_f1_ci95"] = list(bootstrap_interval(per_f1, config.eval.bootstrap, config.seed))
    metrics["bertscore_comparable"] = comparable
    metrics["truncated_inputs"] = sum(s.truncated for s in summaries)
    metrics["mean_summary_tokens"] = sum(s.tokens for s in summaries) / max(len(summaries), 1)
    rows = [{"id": e.id, "document": e.document, "references": list(e.references), "prediction": s.text,
             "truncated": s.truncated, **{k: round(v, 4) for k, v in p.items()}, "bertscore_f1": round(f, 4)}
            for e, s, p, f in zip(examples, summaries, per, per_f1, strict=True)]
    return metrics, rows


def write_evaluation(run_dir: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    files = RunFiles(run_dir)
    write_jsonl_atomic(files.predictions("test"), rows)
    refs = [len(r["references"]) for r in rows]
    result = {
        "split": "test", "examples": len(rows), "metrics": metrics,
        "references_per_example": {"min": min(refs), "max": max(refs)} if refs else {},
        "multi_reference": "best F1 over the references, per ROUGE type",
        "lsum": "references split on their newlines, predictions sentence-split first",
        **extra,
    }
    write_json_atomic(files.eval, result)
    m = metrics
    logger.info(f"ROUGE-1 {m['rouge1']:.4f}, ROUGE-2 {m['rouge2']:.4f}, ROUGE-L {m['rougeL']:.4f} "
                f"[{m['rougeL_ci95'][0]:.3f}, {m['rougeL_ci95'][1]:.3f}], ROUGE-Lsum {m['rougeLsum']:.4f}; "
                f"BERTScore F1 {m['bertscore_f1']:.4f}" + ("" if m["bertscore_comparable"] else
                                                           " (tiny local model: not comparable)"))
    return result


def evaluate_summarization_run(run_dir: Path, batch_size: int | None = None, device: str | None = None,
                               backend: str = "torch") -> dict[str, Any]:
    """``dlhw evaluate RUN``: summarize the run's test split again (torch or its ONNX export) and score it."""
    from dlhw.config import from_dict
    from dlhw.core.runs import run_config_dict
    from dlhw.families.summarization.config import SummarizationConfig
    from dlhw.families.summarization.data import prepare_summaries
    from dlhw.families.summarization.infer import load_summarizer
    from dlhw.reports.run_report import write_run_report

    run_dir = Path(run_dir)
    config = from_dict(SummarizationConfig, run_config_dict(run_dir))
    summarizer = load_summarizer(str(run_dir), backend, device or "auto")
    if batch_size:
        config.eval.batch_size = batch_size
    splits = prepare_summaries(config.data, config.seed)
    metrics, rows = score(summarizer, splits.test, config, run_dir, f"{backend}")
    previous = read_eval(run_dir)
    extra = {k: v for k, v in previous.items() if k in ("base", "change_from_base")}
    result = write_evaluation(run_dir, metrics, rows, {**extra, "backend": backend})
    write_run_report(run_dir)
    return result
