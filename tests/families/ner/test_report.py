"""``dlhw data inspect ner``: the data-quality report finds planted duplicates and overlap."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def test_quality_report_on_a_fixture_with_planted_problems(tmp_path):
    out = tmp_path / "inspect"
    code, log = run_cli("data", "inspect", "ner", "--data-dir", str(FIXTURES / "quality"), "--preset", "tiny",
                        "--out", str(out))
    assert code == 0, log
    numbers = json.loads(log[log.index("{"):])
    assert numbers["quality"]["duplicates_train"] == 2 and numbers["quality"]["test_in_train"] == 2
    assert numbers["test"] == 2  # the two test sentences seen in train were dropped
    report = (out / "quality.md").read_text(encoding="utf-8")
    assert "| exact duplicates (extra copies) | 2 | 0 | 0 |" in report
    assert "| ... with different tags | 1 | 0 | 0 |" in report
    assert "test sentences also in train: **2** (dropped from test: 2" in report
    assert "invalid IOB transitions repaired (an I- after O or another type became B-): 1" in report
    for name in ("labels_per_language.png", "lengths.png"):
        assert (out / name).stat().st_size > 1000 and f"]({name})" in report


def test_keeping_the_overlap_is_an_option(tmp_path):
    code, log = run_cli("data", "inspect", "ner", "--data-dir", str(FIXTURES / "quality"), "--preset", "tiny",
                        "--set", "data.drop_test_overlap=false", "--out", str(tmp_path))
    assert code == 0, log
    assert json.loads(log[log.index("{"):])["test"] == 4
    assert "(kept: data.drop_test_overlap is false)" in (tmp_path / "quality.md").read_text(encoding="utf-8")
