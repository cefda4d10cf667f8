"""``dlhw export RUN --hf`` on a NER run: dlhw's head (dropout + linear) is the backbone's token-classification
head, so the folder loads as ``AutoModelForTokenClassification`` with the run's logits and labels."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def test_ner_exports_an_automodelfortokenclassification_with_the_run_s_logits(ner_run, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from dlhw.families.ner.data import LABELS
    from dlhw.families.ner.model import load_ner_model

    out = tmp_path / "hf"
    code, log = run_cli("export", str(ner_run), "--hf", "--out", str(out))
    assert code == 0, log
    assert "tags identical on all" in log
    model = AutoModelForTokenClassification.from_pretrained(out, local_files_only=True).eval()
    assert type(model).__name__ == "XLMRobertaForTokenClassification"
    assert [model.config.id2label[i] for i in range(len(LABELS))] == list(LABELS)
    ours, tokenizer, _ = load_ner_model(ner_run / "model")
    assert type(AutoTokenizer.from_pretrained(out)).__name__ == type(tokenizer).__name__
    batch = tokenizer([["Paris", "is", "in", "France"], ["تهران"]], is_split_into_words=True, padding=True,
                      return_tensors="pt")
    with torch.no_grad():
        expected = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])["logits"]
        got = model(**batch).logits
    assert torch.equal(got, expected)
    meta = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert meta["pipeline_tag"] == "token-classification" and "f1" in meta["dlhw"]["metrics"]
