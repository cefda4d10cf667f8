"""TTS metrics: mel-cepstral distortion (MCD) as the literature defines it, DTW alignment, CER.

- **MCD** (dB), Kubichek (1993) in the form of Kominek et al. (2008) that TTS papers report:
  ``MCD = 10 / ln 10 * sqrt(2 * sum_{d=1..D} (c_d - c'_d)^2)``, averaged over the frames of the DTW
  alignment of the two cepstrum sequences, ``c_0`` (the frame's energy) left out. ``c`` are
  mel-cepstra taken from the waveform as SPTK does (``pysptk.sp2mc``): the power spectrum of a
  Blackman-windowed frame -> its real cepstrum (natural log, minimum-phase convention: the log
  *amplitude*'s ``c_0`` and twice its ``c_m``) -> SPTK's ``freqt`` all-pass frequency warping
  (``alpha`` 0.42 at 16 kHz: the mel scale) -> ``c_0 .. c_D`` (``D`` 24). pysptk itself has no
  wheel; ``freqt`` is a linear map of the cepstrum, built once here by SPTK's own recursion.
- **DTW**: dtw-python's compiled core (symmetric2 step pattern) over a frame-distance matrix.
- **CER**: jiwer's character error rate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jiwer
import numpy as np
from dtw import dtw
from scipy.spatial.distance import cdist

MCD_ORDER = 24
"""Mel-cepstral coefficients compared (``c_1 .. c_24``), as most TTS papers do."""
MCD_ALPHA = 0.42
"""All-pass warping constant that approximates the mel scale at 16 kHz (SPTK's table)."""
FFT_SIZE, FRAME_LENGTH, FRAME_SHIFT = 512, 400, 80
"""25 ms Blackman frames every 5 ms, 512-point FFT, at 16 kHz."""
DB = 10.0 / math.log(10.0)


def dtw_path(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """DTW alignment of (Ta, D) and (Tb, D) frame sequences under ``metric`` (scipy's cdist names):
    the aligned index pairs as two (N,) arrays."""
    cost = cdist(a, b, metric=metric)  # (Ta, Tb)
    alignment = dtw(cost)
    return np.asarray(alignment.index1), np.asarray(alignment.index2)


@lru_cache(maxsize=8)
def freqt_matrix(n: int, order: int, alpha: float) -> np.ndarray:
    """SPTK's ``freqt`` (frequency warping of a cepstrum by the first-order all-pass ``alpha``) as
    the (order + 1, n) matrix it is: warped = matrix @ cepstrum[:n]."""
    c1 = np.eye(n)  # (n, n): run the recursion on every basis cepstrum at once
    g = np.zeros((n, order + 1))  # (n, order+1)
    b = 1.0 - alpha * alpha
    for i in range(n - 1, -1, -1):
        d = g.copy()
        g[:, 0] = c1[:, i] + alpha * d[:, 0]
        if order >= 1:
            g[:, 1] = b * d[:, 0] + alpha * d[:, 1]
        for j in range(2, order + 1):
            g[:, j] = d[:, j - 1] + alpha * (d[:, j] - g[:, j - 1])
    return g.T  # (order+1, n)


def spectrum_to_mcep(power: np.ndarray, order: int = MCD_ORDER, alpha: float = MCD_ALPHA) -> np.ndarray:
    """(T, F) power spectra (F = fft / 2 + 1 bins, 0 .. Nyquist) -> (T, order + 1) mel-cepstra
    (``pysptk.sp2mc``: real cepstrum of the log power, ``c_0`` halved, then ``freqt``)."""
    fft = 2 * (power.shape[1] - 1)
    c = np.fft.irfft(np.log(np.maximum(power, 1e-12)), n=fft, axis=1)[:, : fft // 2 + 1]  # (T, F)
    c[:, 0] /= 2.0  # the log amplitude's c_0; c_m (m >= 1) of the log power = the minimum-phase c_m
    return c @ freqt_matrix(c.shape[1], order, alpha).T  # (T, order+1)


def mel_cepstra(waveform: np.ndarray, order: int = MCD_ORDER, alpha: float = MCD_ALPHA) -> np.ndarray:
    """(N,) 16 kHz waveform -> (T, order + 1) mel-cepstra of its 25 ms frames every 5 ms."""
    wave = np.asarray(waveform, dtype=np.float64)
    if len(wave) < FRAME_LENGTH:
        wave = np.pad(wave, (0, FRAME_LENGTH - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, FRAME_LENGTH)[::FRAME_SHIFT]  # (T, L)
    power = np.abs(np.fft.rfft(frames * np.blackman(FRAME_LENGTH), n=FFT_SIZE, axis=1)) ** 2  # (T, F)
    return spectrum_to_mcep(power, order, alpha)


def mel_cepstra_from_log_mel(log10_mel: np.ndarray, filters: np.ndarray, order: int = MCD_ORDER,
                             alpha: float = MCD_ALPHA) -> np.ndarray:
    """(T, M) log10-mel frames (``log10(|X| @ filters)``, filters (F, M)) -> (T, order + 1) mel-cepstra
    of the amplitude spectrum they imply: each band's mean amplitude spread back over its bins
    (bins outside every band take the nearest band's). For audio that is not speech (a random
    vocoder), where cepstra of the waveform say nothing about the model."""
    weight = filters.sum(1)  # (F,): how much of each bin the bands cover
    band = (10.0 ** log10_mel) / filters.sum(0)  # (T, M): mean amplitude per unit weight
    amp = band @ filters.T / np.maximum(weight, 1e-12)  # (T, F)
    covered = np.flatnonzero(weight > 0)
    nearest = covered[np.clip(np.searchsorted(covered, np.arange(len(weight))), 0, len(covered) - 1)]  # (F,)
    return spectrum_to_mcep(amp[:, nearest] ** 2, order, alpha)


def cepstral_distortion(c: np.ndarray, c_ref: np.ndarray) -> float:
    """MCD (dB) of (T, D+1) cepstra against (T', D+1) reference cepstra: ``c_0`` dropped, frames
    aligned by DTW (Euclidean distance on ``c_1 .. c_D``), the per-frame distortion averaged over the path."""
    a, b = c[:, 1:], c_ref[:, 1:]
    i, j = dtw_path(a, b)
    return float(DB * np.sqrt(2.0 * ((a[i] - b[j]) ** 2).sum(-1)).mean())


def mel_cepstral_distortion(waveform: np.ndarray, reference: np.ndarray) -> float:
    """MCD (dB) of a 16 kHz waveform against its reference recording (see the module docstring)."""
    return cepstral_distortion(mel_cepstra(waveform), mel_cepstra(reference))


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Character edits (substitutions, deletions, insertions) per reference character (jiwer)."""
    return float(jiwer.cer(reference, hypothesis))
