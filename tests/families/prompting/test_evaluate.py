"""Answer extraction, self-consistency votes and the accuracy interval."""

from __future__ import annotations

import pytest

from dlhw.families.prompting.data import BbhExample
from dlhw.families.prompting.evaluate import (
    draw_shots,
    extract_answer,
    majority_vote,
    score_rows,
    wilson_interval,
)


@pytest.mark.parametrize(("text", "label"), [
    ("not", "unknown"),
    ("I don't know", "unknown"),
    ("No.", "no"),
    ("no", "no"),
    ("Yes, it is.", "yes"),
    ("So the answer is yes.", "yes"),
    ("Quentin is not a hockey player, I know. So the answer is no.", "no"),
    ("implausible", "no"),
    ("plausible", "yes"),
    ("The sentence is not plausible.", "no"),
    ("It is implausible.", "no"),
    ("It is plausible.", "yes"),
    ("Maybe yes, maybe no", "unknown"),
    ("No, it is plausible", "no"),
    ("First I thought the answer is no, but the answer is yes", "yes"),
    ("The answer is: Yes", "yes"),
    ("Notably, knowledge matters.", "unknown"),
    ("", "unknown"),
])
def test_extraction(text, label):
    assert extract_answer(text) == label


def test_majority_vote_counts_and_the_tie_rule():
    vote = majority_vote(["no", "yes", "unknown", "yes", "no"])
    assert (vote.answer, vote.tie) == ("no", True)  # 2-2: the tied label sampled first wins
    assert vote.counts == {"yes": 2, "no": 2, "unknown": 1}
    vote = majority_vote(["unknown", "yes", "no", "yes"])
    assert (vote.answer, vote.tie) == ("yes", False)
    assert majority_vote(["unknown", "unknown"]).answer == "unknown"


def test_wilson_interval_and_unknown_counts_as_wrong():
    low, high = wilson_interval(200, 250)
    assert low == pytest.approx(0.7460, abs=1e-4) and high == pytest.approx(0.8449, abs=1e-4)  # by hand
    rows = [{"target": "yes", "prediction": "yes", "votes": ""}, {"target": "no", "prediction": "unknown", "votes": ""},
            {"target": "no", "prediction": "no", "votes": ""}, {"target": "yes", "prediction": "no", "votes": ""}]
    scored = score_rows(rows)
    assert (scored["accuracy"], scored["unknown_rate"]) == (0.5, 0.25)
    assert scored["predicted"] == {"yes": 1, "no": 2, "unknown": 1}


def test_shots_are_fixed_by_the_seed():
    pool = [BbhExample(f"q{i}", "yes" if i % 2 else "no") for i in range(50)]
    assert draw_shots(pool, 3, 7) == draw_shots(pool, 3, 7)
    assert draw_shots(pool, 3, 7) != draw_shots(pool, 3, 8)
