"""The three caption recipes end to end on the tiny preset (slow: minutes on 2 cores)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from dlhw.config import from_dict, load_yaml
from dlhw.families.caption.captions import Vocabulary
from dlhw.families.caption.config import CaptionConfig
from dlhw.families.caption.data import prepare_captions
from dlhw.families.caption.evaluate import attention_localization, evaluate_caption_run, predict
from dlhw.families.caption.infer import TorchCaptioner
from dlhw.families.caption.metrics import bleu_scores
from dlhw.families.caption.model import CaptionModel, load_spec
from dlhw.families.caption.scene_pretrain import scene_pretrained_backbone
from dlhw.families.caption.scenes import scene_of

pytestmark = pytest.mark.slow
ARCHS = ["rnn", "attention", "transformer"]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_recipe_learns_to_caption_held_out_scenes(trained_runs, arch):
    run = trained_runs[arch]
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["split"] == "test" and evaluation["num_images"] == 120
    assert evaluation["metrics"]["bleu_4"] >= 0.5

    # the same model, untrained (same encoder, decoder at its initial weights), scores < 0.1
    config = from_dict(CaptionConfig, load_yaml(run / "config.yaml"))
    torch.manual_seed(config.seed)
    untrained = CaptionModel(load_spec(run / "model"))
    untrained.encoder.backbone.load_state_dict(
        scene_pretrained_backbone(config.model.encoder_width_mult, config.model.encoder_depth_mult,
                                  config.data.image_size))
    data = prepare_captions(config.data, config.seed)
    vocab = Vocabulary.load(run / "model" / "vocab.json")
    preds = predict(TorchCaptioner(untrained, vocab), data.splits.test)
    assert bleu_scores(data.tokens["test"], preds.words)["bleu_4"] < 0.1


@pytest.mark.parametrize("arch", ARCHS)
def test_run_directory_holds_every_promised_file(trained_runs, arch):
    run = trained_runs[arch]
    for rel in ("config.yaml", "metrics.jsonl", "plots/loss.png", "model/model.safetensors",
                "model/config.json", "model/vocab.json", "eval.json", "report.md", "splits.json",
                "plots/samples_test.png"):
        assert (run / rel).is_file() and (run / rel).stat().st_size > 0, rel
    assert any((run / "checkpoints").glob("checkpoint-*/model.safetensors"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert evals[-1] < evals[0]  # validation loss went down
    samples = [k for r in records for k in r if k.startswith("sample_caption")]
    assert len(samples) == len(evals)  # one fixed validation caption per epoch
    report = (run / "report.md").read_text()
    assert "bleu_4" in report and "![loss](plots/loss.png)" in report
    vocab = json.loads((run / "model" / "vocab.json").read_text())
    assert list(vocab)[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"] and len(vocab) >= 24


def test_attention_peaks_on_the_object_a_word_names(trained_runs):
    run = trained_runs["attention"]
    config = from_dict(CaptionConfig, load_yaml(run / "config.yaml"))
    data = prepare_captions(config.data, config.seed)
    preds = predict(TorchCaptioner.from_run(run), data.splits.test)
    scenes = [scene_of(im.image_id, config.seed) for im in data.splits.test]
    hits, checked = attention_localization(scenes, preds)
    assert checked >= 100
    assert hits / checked >= 0.7
    assert (run / "plots" / "attention.png").is_file()


def test_beam_search_evaluation(trained_runs):
    from tests.conftest import run_cli

    run = trained_runs["transformer"]
    code, out = run_cli("evaluate", str(run), "--beam-size", "3", "--split", "val")
    assert code == 0, out
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["beam_size"] == 3 and evaluation["split"] == "val"
    assert evaluation["metrics"]["bleu_4"] >= 0.5


def test_beam_search_evaluation_draws_the_best_beams_attention(trained_runs, tmp_path):
    """The full preset decodes with beam 3 (eval.beam_size): `dlhw evaluate` still writes the heatmap."""
    run = tmp_path / "run"  # a copy: the shared run's eval.json stays the greedy test-split one
    shutil.copytree(trained_runs["attention"], run, ignore=shutil.ignore_patterns("checkpoints"))
    (run / "plots" / "attention.png").unlink()
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["eval"]["beam_size"] = 3
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    result = evaluate_caption_run(run)
    assert result["beam_size"] == 3 and result["plots"]["attention"] == "plots/attention.png"
    assert (run / "plots" / "attention.png").stat().st_size > 10_000
    assert result["metrics"]["attention_peak_in_object"] >= 0.7  # the best beam's maps still localise
