"""BBH loaders on fixtures in the official formats, the pool de-duplication, the embedded task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlhw.errors import DataError
from dlhw.families.prompting import sports_tasks
from dlhw.families.prompting.config import BbhDataConfig
from dlhw.families.prompting.data import (
    BbhExample,
    build_prompt,
    load_bbh_data,
    load_bbh_json,
    load_cot_prompts,
    load_pool_json,
    normalize,
    remove_test_items,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_official_bbh_json_loads():
    items = load_bbh_json(FIXTURES / "bbh" / "sports_understanding.json")
    assert len(items) == 6
    assert items[0] == BbhExample('Is the following sentence plausible? "Bam Adebayo scored a reverse layup in the '
                                  'Western Conference Finals."', "yes")
    assert [i.target for i in items] == ["yes", "no", "no", "no", "yes", "yes"]


def test_cot_prompts_file_loads_description_and_three_exemplars():
    cot = load_cot_prompts(FIXTURES / "cot-prompts" / "sports_understanding.txt")
    assert cot.description == ("Determine whether an artificially constructed sentence relating to sports is "
                               "plausible or not.")
    assert len(cot.exemplars) == 3
    question, rationale = cot.exemplars[1]
    assert question == 'Is the following sentence plausible? "Santi Cazorla scored a touchdown."'
    assert rationale == ("Santi Cazorla is a soccer player. Touchdown is part of American football and rugby. "
                         "So the answer is no.")


def test_bigbench_pool_maps_plausible_to_yes_and_planted_test_items_are_removed_and_counted():
    pool = load_pool_json(FIXTURES / "pool.json")
    assert pool[3] == BbhExample('Is the following sentence plausible? "Jamal Murray was perfect from the line."', "yes")
    assert pool[4].target == "no"
    test = load_bbh_json(FIXTURES / "bbh" / "sports_understanding.json")
    kept, removed = remove_test_items(pool, test)
    assert len(removed) == 3 and len(kept) == 6  # planted with other case, punctuation and spacing
    assert {normalize(r.input) for r in removed} == {
        "joao moutinho caught the screen pass in the nfc championship", "kyle tucker hit a walkoff homer",
        "mikal bridges hit the buzzer beater"}


def test_local_source_reads_the_bbh_repository_layout():
    data = load_bbh_data(BbhDataConfig(source="local", path=str(FIXTURES)))
    assert (len(data.test), len(data.pool), data.removed_from_pool) == (6, 6, 3)
    assert "Kyle Tucker hit a walkoff homer." in data.removed_examples or "kyle tucker hit a walkoff homer" in \
        data.removed_examples
    assert len(data.cot.exemplars) == 3


def test_a_malformed_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bbh.json"
    bad.write_text('{"examples": [\n  {"input": "x", "target": "yes"},\n  oops]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"bbh\.json:3:3: not valid JSON"):
        load_bbh_json(bad)
    bad.write_text(json.dumps({"examples": [{"input": "x", "target": "maybe"}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"examples\[0\]: target 'maybe' is not one of"):
        load_bbh_json(bad)


def test_embedded_test_set_is_balanced_and_disjoint_from_pretraining_pairs():
    test, pairs = sports_tasks.split_pairs(250)
    assert len(test) == 250 and sum(i.target == "yes" for i in test) == 125
    held = {(i.player, i.action) for i in test}
    assert len(held) == 250
    assert not held & {(p[0], p[2]) for p in pairs}
    pool = sports_tasks.pool_items(250)
    assert not held & {(i.player, i.action) for i in pool}
    item = next(i for i in test if i.target == "no")
    assert item.rationale.endswith("differ, so the answer is no.")


def test_prompts_of_each_strategy():
    cot = load_cot_prompts(FIXTURES / "cot-prompts" / "sports_understanding.txt")
    q = 'Is the following sentence plausible? "Kyle Tucker hit a walkoff homer."'
    assert build_prompt("answer-only", q) == f"Q: {q}\nA:"
    shots = [BbhExample("Is the following sentence plausible? \"A B ran.\"", "yes")]
    assert build_prompt("few-shot", q, shots) == f"Q: {shots[0].input}\nA: yes\n\nQ: {q}\nA:"
    assert build_prompt("cot", q) == f"Q: {q}\nA: Let's think step by step."
    few = build_prompt("cot-few-shot", q, cot=cot)
    assert few.startswith(cot.description + "\n\nQ: ") and few.count("Let's think step by step.") == 4
    assert few.endswith(f"Q: {q}\nA: Let's think step by step.")
