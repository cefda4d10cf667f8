"""``dlhw data inspect ner``: the data-quality report finds planted duplicates and overlap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_fully_overlapping_conll_files_are_reported_not_refused(tmp_path):
    """Every test sentence repeats a train sentence: training refuses, inspect reports and exits 0."""
    code, log = run_cli("data", "inspect", "ner", "--data-dir", str(FIXTURES / "overlap"), "--preset", "tiny",
                        "--out", str(tmp_path))
    assert code == 0, log
    assert "warning: " in log and "all 2 test sentences repeat train sentences" in log
    numbers = json.loads(log[log.index("{"):])
    assert numbers["test"] == 0
    assert numbers["quality"]["test_in_train"] == 2 and numbers["quality"]["test_overlap_dropped"] == 2
    assert len(numbers["warnings"]) == 1
    report = (tmp_path / "quality.md").read_text(encoding="utf-8")
    assert "test sentences also in train: **2**" in report and "## Warnings" in report


def test_training_still_refuses_an_empty_test_split():
    from dlhw.errors import DataError
    from dlhw.families.ner.config import NerDataConfig
    from dlhw.families.ner.data import prepare_ner_data

    cfg = NerDataConfig(source="local", data_dir=str(FIXTURES / "overlap"))
    with pytest.raises(DataError, match=r"0 test sentences after cleaning.*drop_test_overlap=false"):
        prepare_ner_data(cfg, seed=0)
