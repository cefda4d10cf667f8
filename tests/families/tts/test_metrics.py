"""TTS metrics against values worked out by hand: mel-cepstra, MCD, DTW, CER."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlhw.families.tts.metrics import (
    MCD_ORDER,
    cepstral_distortion,
    character_error_rate,
    dtw_path,
    mel_cepstra,
    mel_cepstra_from_log_mel,
    mel_cepstral_distortion,
    spectrum_to_mcep,
)

OMEGA = np.linspace(0.0, np.pi, 257)  # (F,) bins of a 512-point FFT


def one_pole_power(b: float) -> np.ndarray:
    """|H|^2 of H(z) = 1 / (1 - b z^-1), whose cepstrum is known in closed form."""
    return 1.0 / np.abs(1.0 - b * np.exp(-1j * OMEGA)) ** 2  # (F,)


@pytest.mark.parametrize("alpha", [0.0, 0.42])
def test_mel_cepstrum_of_a_one_pole_filter_is_the_closed_form(alpha):
    # z^-1 = (w + a) / (1 + a w), w the all-pass z~^-1, so log H = -log(1 - b a) - log(1 - b' w) + log(1 + a w)
    # with b' = (b - a) / (1 - b a): c~_0 = -log(1 - b a), c~_m = (b'^m - (-a)^m) / m
    b = 0.5
    bp = (b - alpha) / (1 - b * alpha)
    m = np.arange(1, MCD_ORDER + 1)
    expected = np.r_[-math.log(1 - b * alpha), (bp**m - (-alpha) ** m) / m]
    got = spectrum_to_mcep(one_pole_power(b)[None], MCD_ORDER, alpha)[0]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    if alpha == 0.42:
        np.testing.assert_allclose(got[:3], [0.2357223, 0.5212658, -0.0830726], atol=1e-7)


def test_mcd_is_the_literature_formula_on_a_known_pair():
    # alpha 0: c_d = b^d / d, so MCD = 10/ln10 * sqrt(2 * sum_d ((0.5^d - 0.3^d) / d)^2) = 1.34130 dB
    # (d = 1, 2, 3 alone: 0.2^2 + 0.08^2 + 0.032667^2 = 0.0474671 of the sum 0.0476929)
    c = np.repeat(spectrum_to_mcep(one_pole_power(0.5)[None], MCD_ORDER, 0.0), 5, axis=0)  # (5, 25)
    c_ref = np.repeat(spectrum_to_mcep(one_pole_power(0.3)[None], MCD_ORDER, 0.0), 7, axis=0)  # (7, 25)
    assert cepstral_distortion(c, c_ref) == pytest.approx(1.3413011, abs=1e-6)
    c_ref[:, 0] += 3.0  # c_0, the frame's energy, is not compared
    assert cepstral_distortion(c, c_ref) == pytest.approx(1.3413011, abs=1e-6)


def speech_like(seconds: float = 0.6, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A 16 kHz glottal pulse train through two resonances, plus a little noise."""
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    x = np.zeros(n)
    x[:: int(16000 / f0)] = 1.0
    for freq, bw in ((700.0, 130.0), (1200.0, 70.0)):
        r, theta = math.exp(-math.pi * bw / 16000), 2 * math.pi * freq / 16000
        y = np.zeros(n)
        for i in range(n):  # y[n] = x[n] + 2 r cos(theta) y[n-1] - r^2 y[n-2]
            y[i] = x[i] + 2 * r * math.cos(theta) * y[i - 1] * (i >= 1) - r * r * y[i - 2] * (i >= 2)
        x = y
    return x / np.abs(x).max() + 1e-3 * rng.standard_normal(n)


def test_mcd_of_waveforms_ignores_gain_and_timing_but_not_the_voice():
    x = speech_like()
    assert mel_cepstra(x).shape == (1 + (len(x) - 400) // 80, MCD_ORDER + 1)  # 25 ms frames every 5 ms
    assert mel_cepstral_distortion(x, x) == 0.0
    assert mel_cepstral_distortion(0.3 * x, x) == pytest.approx(0.0, abs=1e-6)  # gain is c_0 only
    slower = np.concatenate([x[:4000], x[3200:]])  # 50 ms said again: DTW aligns it
    other = speech_like(f0=220.0, seed=1)
    assert mel_cepstral_distortion(slower, x) < 0.2 * mel_cepstral_distortion(other, x)  # 0.37 vs 2.71 dB


def test_mel_cepstra_from_log_mel_see_the_same_spectral_envelope_change():
    from transformers import SpeechT5FeatureExtractor

    features = SpeechT5FeatureExtractor()
    x, other = speech_like(), speech_like(f0=220.0, seed=1)
    mel_x, mel_o = (np.asarray(features(audio_target=w, sampling_rate=16000).input_values[0]) for w in (x, other))
    cx, co = (mel_cepstra_from_log_mel(m, features.mel_filters) for m in (mel_x, mel_o))
    assert cepstral_distortion(cx, cx) == 0.0
    assert cepstral_distortion(mel_cepstra_from_log_mel(mel_x + 1.0, features.mel_filters), cx) == pytest.approx(
        0.0, abs=1e-6)  # x10 amplitude: c_0 only
    assert cepstral_distortion(co, cx) > 1.0


def test_dtw_path_aligns_repeated_frames():
    a = np.array([[0.0], [1.0], [2.0]])
    b = np.array([[0.0], [0.0], [1.0], [1.0], [2.0]])
    i, j = dtw_path(a, b)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4)]


def test_character_error_rate():
    assert character_error_rate("abd", "abcd") == 0.25  # one deletion in four characters
    assert character_error_rate("سلام دنیا", "سلام دنیا") == 0.0
    assert character_error_rate("سلم دنیا", "سلام دنیا") == pytest.approx(1 / 9)
    assert character_error_rate("xabcd", "abcd") == 0.25  # one insertion
