"""The engine trains with any trainer class, scores with compute_metrics or a generation-based
evaluation, and keeps the best checkpoint by the family's metric and direction."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from dlhw.config import TrainConfig
from dlhw.engine.trainer import Engine, run_training
from dlhw.errors import ConfigError


class Classifier(nn.Module):
    """A linear classifier with a Trainer-friendly forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.linear(x)  # (B, 3)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def _blobs(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(3, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = centres[labels] + 0.8 * torch.randn(n, 4, generator=gen)  # (n, 4)
    return [{"x": x[i], "labels": labels[i]} for i in range(n)]


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


TRAIN = TrainConfig(epochs=4, batch_size=16, eval_batch_size=64, learning_rate=0.05, eval_strategy="steps",
                    eval_steps=5, logging_steps=5, num_workers=0, early_stopping_patience=0, save_total_limit=10,
                    device="cpu")


@pytest.mark.slow
def test_compute_metrics_picks_the_best_checkpoint_by_a_metric_where_greater_is_better(tmp_path):
    def accuracy(prediction) -> dict[str, float]:
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    torch.manual_seed(0)
    engine = Engine(compute_metrics=accuracy, metric_for_best_model="accuracy", greater_is_better=True)
    trainer, result = run_training(Classifier(), _blobs(160, 1), _blobs(60, 2), _collate, TRAIN, tmp_path, 0,
                                   engine=engine)
    evals = [r for r in _records(tmp_path) if "eval_accuracy" in r]
    assert len(evals) == result.global_step // 5 >= 6
    best = max(evals, key=lambda r: (r["eval_accuracy"], -r["step"]))  # HF keeps the first best
    assert result.best_metric == best["eval_accuracy"] > 0.8
    assert result.best_checkpoint.endswith(f"checkpoint-{best['step']}")
    assert result.best_metric_name == "validation accuracy"
    assert evals[0]["eval_accuracy"] < best["eval_accuracy"]  # it learned, and the metric says so


@pytest.mark.slow
def test_generation_metrics_join_every_evaluation_and_can_pick_the_best(tmp_path):
    held_out = _collate(_blobs(80, 3))
    calls = []

    def held_out_accuracy(model) -> dict[str, float]:
        calls.append(model.training)
        logits = model(held_out["x"])["logits"]
        return {"held_out_accuracy": float((logits.argmax(-1) == held_out["labels"]).float().mean())}

    torch.manual_seed(0)
    engine = Engine(generation_metrics=held_out_accuracy, metric_for_best_model="held_out_accuracy",
                    greater_is_better=True)
    trainer, result = run_training(Classifier(), _blobs(160, 1), _blobs(60, 2), _collate, TRAIN, tmp_path, 0,
                                   engine=engine)
    evals = [r for r in _records(tmp_path) if "eval_loss" in r]
    assert all("eval_held_out_accuracy" in r for r in evals) and len(calls) == len(evals)
    assert not any(calls), "scored in eval mode"
    assert result.best_metric == max(r["eval_held_out_accuracy"] for r in evals)
    # the best checkpoint was loaded at the end: the final model scores what the best evaluation said
    assert held_out_accuracy(trainer.model)["held_out_accuracy"] == pytest.approx(result.best_metric)


@pytest.mark.slow
def test_seq2seq_trainer_evaluates_on_generated_sequences(tmp_path):
    from transformers import (
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        T5Config,
        T5ForConditionalGeneration,
    )

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=16, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                                num_heads=4, dropout_rate=0.0, decoder_start_token_id=0,
                                                pad_token_id=0, eos_token_id=1))
    gen = torch.Generator().manual_seed(0)
    seqs = torch.randint(2, 8, (496, 4), generator=gen)
    data = [{"input_ids": s, "attention_mask": torch.ones(4, dtype=torch.long),
             "labels": torch.tensor([s[0], 1])} for s in seqs]  # answer with the first token, then EOS
    lengths = []

    def exact_copy(prediction) -> dict[str, float]:
        predicted = torch.as_tensor(prediction.predictions)  # (N, T) generated ids, not logits
        assert predicted.dim() == 2
        lengths.append(int(predicted.ne(0).sum(-1).max()))  # HF pads to the config's max_length with 0
        target = torch.as_tensor(prediction.label_ids)[:, 0]
        return {"copied": float((predicted[:, 1] == target).float().mean())}

    engine = Engine(trainer_class=Seq2SeqTrainer, args_class=Seq2SeqTrainingArguments,
                    args={"predict_with_generate": True, "generation_max_length": 8},
                    compute_metrics=exact_copy, metric_for_best_model="copied", greater_is_better=True)
    cfg = TrainConfig(epochs=8, batch_size=16, eval_batch_size=32, learning_rate=1e-2, eval_strategy="steps",
                      eval_steps=25, logging_steps=25, num_workers=0, early_stopping_patience=0, device="cpu")
    # 400 training sequences: enough that the copy rule, not the sequences, is what gets learnt
    trainer, result = run_training(model, data[:400], data[400:], _collate, cfg, tmp_path, 0, engine=engine)
    assert isinstance(trainer, Seq2SeqTrainer)
    assert lengths and max(lengths) <= 8  # the metric saw generate()'s output, cut at generation_max_length
    copied = [r["eval_copied"] for r in _records(tmp_path) if "eval_copied" in r]
    assert max(copied) >= copied[0] + 0.3, copied  # generated copies got better
    assert result.best_metric == max(copied)


@pytest.mark.slow
def test_trl_sft_trainer_trains_on_completions_only(tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from dlhw.families.chat.config import TinyModelConfig
    from dlhw.lm.tiny import tiny_model_config, train_tiny_tokenizer

    words = ["one", "two", "three", "four", "five", "six"]
    pairs = [(f"after {a} comes", f" {b}") for a, b in zip(words, words[1:], strict=False)]
    tokenizer = train_tiny_tokenizer([p + c for p, c in pairs] * 20, vocab_size=300)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_model_config(
        TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64), tokenizer))
    rows = {"prompt": [p for p, _ in pairs] * 16, "completion": [c for _, c in pairs] * 16}
    engine = Engine(trainer_class=SFTTrainer, args_class=SFTConfig,
                    args={"completion_only_loss": True, "max_length": 32, "remove_unused_columns": True},
                    trainer_kwargs={"processing_class": tokenizer})
    cfg = TrainConfig(epochs=8, batch_size=16, learning_rate=1e-2, logging_steps=5, num_workers=0,
                      early_stopping_patience=0, eval_on_start=True, device="cpu")
    trainer, result = run_training(model, Dataset.from_dict(rows), Dataset.from_dict(rows), None, cfg, tmp_path, 0,
                                   engine=engine)
    assert isinstance(trainer, SFTTrainer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    prompt_tokens = len(tokenizer(pairs[0][0])["input_ids"])
    assert (batch["labels"][0, :prompt_tokens] == -100).all()  # the prompt is masked out of the loss
    assert (batch["labels"][0, prompt_tokens:] != -100).any()
    losses = [r["eval_loss"] for r in _records(tmp_path) if "eval_loss" in r]
    assert losses[-1] < 0.5 * losses[0], losses


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every TensorBoard event file under ``folder`` (tensorboard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return found


def test_trainer_args_reach_the_trainingarguments_and_report_to_defaults_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from dlhw.engine.trainer import training_arguments

    cfg = TrainConfig(device="cpu", trainer_args={"optim": "adafactor", "ddp_find_unused_parameters": True})
    args = training_arguments(cfg, tmp_path, 0)
    assert args.optim == "adafactor" and args.ddp_find_unused_parameters is True
    assert args.report_to == ["tensorboard"]
    assert training_arguments(TrainConfig(device="cpu", report_to="none"), tmp_path, 0).report_to == []


def test_trainer_args_are_checked_against_the_recipe_s_own_arguments_class(tmp_path):
    from transformers import Seq2SeqTrainingArguments

    from dlhw.engine.trainer import training_arguments

    packing = TrainConfig(device="cpu", trainer_args={"packing": True})  # an SFTConfig field: the config accepts it
    with pytest.raises(ConfigError, match=r"^train\.trainer_args\.packing: not a field of this recipe's "
                                          r"TrainingArguments"):
        training_arguments(packing, tmp_path, 0)
    engine = Engine(args_class=Seq2SeqTrainingArguments, args={"predict_with_generate": True})
    with pytest.raises(ConfigError, match=r"predict_with_generate: this recipe's trainer sets it to True"):
        training_arguments(TrainConfig(device="cpu", trainer_args={"predict_with_generate": False}), tmp_path, 0,
                           engine)
    with pytest.raises(ConfigError, match=r"^the Trainer refuses its arguments \(train\.trainer_args: "
                                          r"\{'optim': 'adamw_nonesuch'\}\): "):
        training_arguments(TrainConfig(device="cpu", trainer_args={"optim": "adamw_nonesuch"}), tmp_path, 0)


@pytest.mark.slow
def test_adafactor_from_trainer_args_trains_and_tensorboard_holds_the_logged_losses(tmp_path):
    pytest.importorskip("tensorboard")
    from transformers.optimization import Adafactor

    torch.manual_seed(0)
    cfg = dataclasses.replace(TRAIN, epochs=2, trainer_args={"optim": "adafactor"})
    trainer, result = run_training(Classifier(), _blobs(160, 1), _blobs(60, 2), _collate, cfg, tmp_path, 0)
    assert isinstance(trainer.optimizer.optimizer, Adafactor)  # accelerate wraps the optimizer
    records = _records(tmp_path)
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert evals[-1] < evals[0]  # it learned with Adafactor
    scalars = _scalars(tmp_path / "tensorboard")  # the run's own folder, not checkpoints/runs/
    assert not (tmp_path / "checkpoints" / "runs").exists()
    train = {r["step"]: r["loss"] for r in records if "loss" in r}
    assert len(train) >= 4 and dict(scalars["train/loss"]) == pytest.approx(train, rel=1e-6)
    assert [v for _, v in scalars["eval/loss"]] == pytest.approx(evals, rel=1e-6)
