"""The one export parity check (:mod:`dlhw.backends.parity`) and its language-model layer (:mod:`dlhw.lm.parity`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlhw.backends.parity import Decision, check_parity, max_abs_diff
from dlhw.errors import DlhwError
from dlhw.lm.parity import compare_generations

ATOL = 1e-3


def test_equal_outputs_pass_with_zero_difference_and_the_common_summary():
    logits = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    tokens = [[5, 6, 7], [5, 8]]
    report = check_parity({"logits": (torch.from_numpy(logits), logits.copy())}, ATOL,
                          decisions=[Decision("greedy tokens", "prompt", tokens, [list(t) for t in tokens],
                                              detail="5 tokens")],
                          what="2 prompts", extra={"prompts": 2})
    assert report == {
        "atol": ATOL, "max_abs_diff": {"logits": 0.0}, "prompts": 2,
        "summary": "parity vs torch on 2 prompts: max |diff| logits 0 (tolerance 0.001); "
                   "greedy tokens equal on 2/2 prompts (5 tokens)",
    }


def test_a_difference_just_over_atol_names_the_output_and_the_number():
    ours = np.zeros((2, 5), np.float64)
    theirs = ours.copy()
    theirs[1, 3] = 1.5e-3
    outputs = {"h": (ours, ours.copy()), "logits": (ours, theirs)}
    with pytest.raises(DlhwError) as error:
        check_parity(outputs, ATOL, what="a check batch of 2 images")
    assert str(error.value) == ("ONNX export differs from torch by 0.0015 in 'logits' on a check batch of 2 images, "
                                "which exceeds the tolerance 0.001; nothing was written")
    theirs[1, 3] = 1e-3  # exactly at the tolerance passes
    assert check_parity(outputs, ATOL)["max_abs_diff"] == {"h": 0.0, "logits": 1e-3}


def test_several_outputs_over_the_tolerance_name_the_worst_and_the_others():
    zero = np.zeros(3)
    outputs = {"a": (zero, zero + 2e-3), "b": (zero, zero + 5e-3), "c": (zero, zero)}
    with pytest.raises(DlhwError, match=r"by 0.005 in 'b' on .* tolerance 0.001 \(so do 'a'\); nothing"):
        check_parity(outputs, ATOL)


def test_a_per_output_limit_replaces_atol_for_that_output_only():
    wave = np.zeros(100, np.float32)
    outputs = {"mel": (np.zeros(4), np.full(4, 5e-4)), "waveform": (wave, wave + 8e-3)}
    report = check_parity(outputs, ATOL, limits={"waveform": 10 * ATOL}, what="4 utterances")
    assert report["max_abs_diff"] == pytest.approx({"mel": 5e-4, "waveform": 8e-3})
    assert report["limits"] == {"waveform": 0.01}
    assert report["summary"] == ("parity vs torch on 4 utterances: max |diff| mel 0.0005, waveform 0.008 "
                                 "(tolerance 0.001, waveform 0.01)")
    outputs["waveform"] = (wave, wave + 1.2e-2)
    with pytest.raises(DlhwError, match=r"by 0.012 in 'waveform' .* exceeds the tolerance 0.01; nothing"):
        check_parity(outputs, ATOL, limits={"waveform": 10 * ATOL})
    outputs["waveform"] = (wave, wave + 8e-3)
    with pytest.raises(DlhwError, match="by 0.008 in 'waveform'"):  # without its limit, atol applies
        check_parity(outputs, ATOL)


def test_a_differing_decision_names_the_first_differing_item_before_any_output():
    ours, theirs = [12, 30, 41, 22], [12, 30, 40, 23]
    far = {"mel": (np.zeros(2), np.ones(2))}  # would fail too: the decision is reported first
    with pytest.raises(DlhwError) as error:
        check_parity(far, ATOL, decisions=[Decision("stop steps", "utterance", ours, theirs)])
    assert str(error.value) == ("ONNX export differs from torch: stop steps of 2/4 utterances differ "
                                "(first: utterance 2, torch 41 vs ORT 40); nothing was written")


def test_lists_of_arrays_compare_pairwise_and_shapes_must_match():
    steps = [torch.zeros(2, 7), torch.zeros(2, 7)]
    later = [torch.zeros(2, 7), torch.full((2, 7), 2e-4)]
    assert max_abs_diff("logits", steps, later) == pytest.approx(2e-4)
    with pytest.raises(DlhwError, match=r"'logits' has 2 arrays from torch and 1 from ONNX Runtime"):
        max_abs_diff("logits", steps, later[:1])
    with pytest.raises(DlhwError, match=r"'memory' has shape \(1, 3, 8\) from torch and \(3, 8\) from ONNX Runtime"):
        max_abs_diff("memory", np.zeros((1, 3, 8)), np.zeros((3, 8)))  # would broadcast silently otherwise


def test_equal_infinities_agree_and_nan_on_one_side_fails():
    masked = np.array([0.5, -np.inf, np.nan])
    assert max_abs_diff("logits", masked, masked.copy()) == 0.0
    broken = np.array([0.5, -np.inf, 0.0])
    with pytest.raises(DlhwError, match="by nan in 'logits'"):
        check_parity({"logits": (masked, broken)}, ATOL)


def test_language_model_parity_keeps_its_report_keys_and_token_for_token_wording():
    tokens = [[4, 5, 6], [7, 8, 2], [9, 2]]
    logits = [torch.randn(3, 11, generator=torch.Generator().manual_seed(i)) for i in range(3)]  # (B, V) per step
    nearby = [step + 2e-4 for step in logits]
    report = compare_generations(tokens, logits, [list(t) for t in tokens], nearby, ATOL, "test document")
    assert report["max_abs_diff"]["logits"] == pytest.approx(2e-4, rel=1e-3)
    assert (report["prompts"], report["equal_prompts"], report["tokens_compared"]) == (3, 3, 8)
    assert report["summary"] == (f"parity vs torch on 3 test documents over 3 greedy steps: max |diff| logits "
                                 f"{report['max_abs_diff']['logits']:.2g} (tolerance 0.001); greedy tokens equal on "
                                 "3/3 test documents (8 tokens)")
    changed = [list(range(20)), [7, 8, 2], [9, 0]]
    with pytest.raises(DlhwError) as error:
        compare_generations(changed, logits, tokens, nearby, ATOL)
    assert str(error.value) == ("ONNX export differs from torch: greedy tokens of 2/3 prompts differ (first: prompt 0, "
                                "torch [0, 1, 2, 3, 4, 5, 6, 7] vs ORT [4, 5, 6]); nothing was written")
