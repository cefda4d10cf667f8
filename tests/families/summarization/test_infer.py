"""Summarization decoding options and the batch verb's input reading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlhw.families.summarization.cli import read_documents
from dlhw.lm.sampling import sampler


def test_sampling_with_top_k_one_is_greedy_and_top_p_keeps_the_nucleus() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 5.0]])
    assert sampler(top_k=1)(logits).tolist() == [1, 2]
    assert sampler(top_p=0.5, seed=3)(logits).tolist() == [1, 2]  # the top token alone holds > 50%
    draws = torch.stack([sampler(temperature=100.0, seed=s)(logits) for s in range(40)])
    assert len(set(draws[:, 0].tolist())) == 3  # a hot temperature reaches every token


def test_documents_from_txt_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(" an article \r\nits second line\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"dialogue": "customer: hi"}\nnot json\n\n{"title": "t"}\n', encoding="utf-8")
    (tmp_path / "c.jsonl").write_bytes(b"\xff\xfe")
    docs = {i.key: i for i in read_documents(sorted(tmp_path.iterdir()))}
    b = tmp_path / "b.jsonl"
    assert list(docs) == [str(tmp_path / "a.txt"), f"{b}:1", f"{b}:2", f"{b}:3", f"{b}:4", f"{tmp_path / 'c.jsonl'}:1"]
    assert docs[str(tmp_path / "a.txt")].get() == "an article \nits second line"  # one document, CRLF read as LF
    assert docs[f"{b}:1"].get() == "customer: hi"
    assert docs[f"{b}:2"].error == "not valid JSON (Expecting value, column 1)"
    assert docs[f"{b}:3"].error == "empty line"
    assert docs[f"{b}:4"].error == ('expected an object with a string field "article" or "dialogue" or "document" or '
                                    '"text", got an object with keys title')
    with pytest.raises(ValueError, match=r"not UTF-8 \(byte 0xff at column 1\)"):
        docs[f"{tmp_path / 'c.jsonl'}:1"].get()
