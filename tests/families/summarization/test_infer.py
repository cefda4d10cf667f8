"""Summarization decoding options and the batch verb's input reading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlhw.families.summarization.cli import Documents
from dlhw.families.summarization.infer import sampler


def test_sampling_with_top_k_one_is_greedy_and_top_p_keeps_the_nucleus() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 5.0]])
    assert sampler(top_k=1)(logits).tolist() == [1, 2]
    assert sampler(top_p=0.5, seed=3)(logits).tolist() == [1, 2]  # the top token alone holds > 50%
    draws = torch.stack([sampler(temperature=100.0, seed=s)(logits) for s in range(40)])
    assert len(set(draws[:, 0].tolist())) == 3  # a hot temperature reaches every token


def test_documents_from_txt_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(" an article \n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"dialogue": "customer: hi"}\nnot json\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_bytes(b"\xff\xfe")
    docs = Documents(sorted(tmp_path.iterdir()))
    assert docs.names() == [str(tmp_path / "a.txt"), f"{tmp_path / 'b.jsonl'}:1", f"{tmp_path / 'b.jsonl'}:2",
                            str(tmp_path / "c.jsonl")]
    assert docs.load(str(tmp_path / "a.txt")) == "an article"
    assert docs.load(f"{tmp_path / 'b.jsonl'}:1") == "customer: hi"
    with pytest.raises(ValueError, match="not valid JSON"):
        docs.load(f"{tmp_path / 'b.jsonl'}:2")
    with pytest.raises(ValueError, match="not UTF-8"):
        docs.load(str(tmp_path / "c.jsonl"))
