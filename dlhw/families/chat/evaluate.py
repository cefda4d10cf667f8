"""Chat evaluation: test loss and perplexity, exact match on the embedded task, probe answers.

``base_eval.json`` (written before training) holds the same numbers for the base model, so
``eval.json`` can state the change a method made, and ``probes.jsonl`` puts each probe's base
and fine-tuned answers side by side.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dlhw.core.atomic import write_json_atomic, write_jsonl_atomic
from dlhw.core.runs import RunFiles, read_json
from dlhw.families.chat.data import ConversationSplits
from dlhw.families.chat.persian_tasks import PROBES, exact_match, make_examples
from dlhw.lm.generate import ChatGenerator, as_conversation
from dlhw.lm.template import Conversation

logger = logging.getLogger(__name__)


@torch.no_grad()
def loss_and_perplexity(model: Any, dataset: list[dict[str, list[int]]], collator: Any, batch_size: int) -> dict[str, float]:
    """Mean loss per assistant token over ``dataset``, and its exponential."""
    device = next(model.parameters()).device
    model.eval()
    total, tokens = 0.0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):  # type: ignore[arg-type]
        batch = {k: v.to(device) for k, v in batch.items()}
        n = int(batch["labels"][:, 1:].ne(-100).sum())  # predicted tokens after the shift
        total += float(model(**batch).loss) * n
        tokens += n
    loss = total / max(tokens, 1)
    return {"test_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "test_tokens": tokens}


def exact_match_set(splits: ConversationSplits, n: int, seed: int) -> list[tuple[Conversation, str, str]]:
    """``(prompt, answer, task)`` triples: the embedded test split, or a fresh embedded set."""
    if "test" in splits.answers:
        pairs = list(zip(splits.test, splits.answers["test"], strict=True))[:n]
        return [(conv[:-1], answer, task) for conv, (answer, task) in pairs]
    # another data source: score the embedded Persian task anyway, on its own seed
    return [(e.messages(with_answer=False), e.answer, e.task) for e in make_examples(n, seed + 1)]


def score_exact_match(generator: ChatGenerator, triples: list[tuple[Conversation, str, str]], batch_size: int,
                      desc: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    hits: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for i in tqdm(range(0, len(triples), batch_size), desc=desc, unit="batch"):
        chunk = triples[i:i + batch_size]
        for (prompt, answer, task), gen in zip(chunk, generator.generate([p for p, _, _ in chunk]), strict=True):
            ok = exact_match(gen.text, answer)
            hits[task].append(ok)
            rows.append({"question": prompt[-1]["content"], "answer": answer, "prediction": gen.text,
                         "task": task, "correct": ok})
    every = [h for v in hits.values() for h in v]
    metrics = {"exact_match": sum(every) / max(len(every), 1),
               "exact_match_by_task": {t: sum(v) / len(v) for t, v in sorted(hits.items())}}
    return metrics, rows


def probe_answers(generator: ChatGenerator, probes: list[str], batch_size: int) -> list[str]:
    out: list[str] = []
    for i in range(0, len(probes), batch_size):
        out += [g.text for g in generator.generate([as_conversation(p) for p in probes[i:i + batch_size]])]
    return out


def _measure(model: Any, tokenizer: Any, test: list[dict[str, list[int]]], splits: ConversationSplits,
             collator: Any, config: Any, label: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    metrics = loss_and_perplexity(model, test, collator, config.train.eval_batch_size)
    generator = ChatGenerator(model, tokenizer, config.eval.max_new_tokens, config.data.max_length)
    triples = exact_match_set(splits, config.eval.exact_match_examples, config.seed)
    em, rows = score_exact_match(generator, triples, config.eval.batch_size, desc=f"exact match ({label})")
    probes = list(config.eval.probes or PROBES)
    answers = probe_answers(generator, probes, config.eval.batch_size)
    return {**metrics, **em}, rows, answers


def base_metrics(model: Any, tokenizer: Any, test: list[dict[str, list[int]]], splits: ConversationSplits,
                 collator: Any, config: Any) -> dict[str, Any]:
    """The base model's numbers and probe answers, before any adaptation."""
    metrics, _, answers = _measure(model, tokenizer, test, splits, collator, config, "base model")
    return {**metrics, "probes": dict(zip(config.eval.probes or PROBES, answers, strict=True))}


def evaluate_loaded(run_dir: Path, model: Any, tokenizer: Any, config: Any, splits: ConversationSplits,
                    test: list[dict[str, list[int]]], collator: Any) -> dict[str, Any]:
    """Score a trained model; write eval.json, probes.jsonl and predictions_test.jsonl."""
    metrics, rows, answers = _measure(model, tokenizer, test, splits, collator, config, "fine-tuned")
    files = RunFiles(run_dir)
    base = read_json(files.base_eval)
    change = {k: metrics[k] - base[k] for k in ("test_loss", "perplexity", "exact_match") if k in base}
    probes = list(config.eval.probes or PROBES)
    write_jsonl_atomic(files.probes, ({"prompt": prompt, "base": base.get("probes", {}).get(prompt), "fine_tuned": answer}
                                      for prompt, answer in zip(probes, answers, strict=True)))
    write_jsonl_atomic(files.predictions("test"), rows)
    result = {
        "split": "test",
        "metrics": metrics,
        "base": {k: v for k, v in base.items() if k != "probes"},
        "change_from_base": change,
    }
    write_json_atomic(files.eval, result)
    logger.info(f"test loss {metrics['test_loss']:.4f} (base {base.get('test_loss', float('nan')):.4f}), perplexity "
                f"{metrics['perplexity']:.2f}, exact match {metrics['exact_match']:.3f} "
                f"(base {base.get('exact_match', float('nan')):.3f})")
    return result


def evaluate_chat_run(run_dir: Path, batch_size: int | None = None, device: str | None = None) -> dict[str, Any]:
    """``dlhw evaluate RUN`` for chat runs: reload the run and its data, then score the test split
    (the split the base model was scored on before training) with the torch model."""
    from dlhw.families.chat.data import prepare_conversations
    from dlhw.lm.run import load_chat_run
    from dlhw.lm.template import ChatCollator, ChatFormatter
    from dlhw.reports.run_report import write_run_report

    loaded = load_chat_run(run_dir, device or "auto")
    config = loaded.config
    if batch_size:
        config.eval.batch_size = batch_size
    splits = prepare_conversations(config.data, config.seed)
    formatter = ChatFormatter(loaded.tokenizer, config.data.max_length)
    test = formatter.encode_all(splits.test)
    result = evaluate_loaded(run_dir, loaded.model, loaded.tokenizer, config, splits, test,
                             ChatCollator(loaded.tokenizer.pad_token_id))
    write_run_report(run_dir)
    return result
