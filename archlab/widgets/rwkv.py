"""Notebook 03's explorer: RWKV-4's per-channel exponential decay, and how far back each channel looks.

Glossary: w = `time_decay` as Hugging Face stores it; one step back multiplies a past token's
weight by exp(-exp(w)), so n steps back by exp(-n exp(w)) and the half-life is ln 2 / exp(w)
tokens (Peng et al. 2023, eq. 14, with exp(w) in place of the paper's w).
"""

import math

import ipywidgets as W
import matplotlib.pyplot as plt
import torch


def decay_curves(w, max_lag):
    """w (C,) -> (C, max_lag + 1): weight exp(-n exp(w)) of a token n = 0 .. max_lag steps back."""
    lags = torch.arange(max_lag + 1, dtype=torch.float64)                 # (N,)
    return torch.exp(-lags[None, :] * torch.exp(w.double())[:, None])     # (C, N)


def half_lives(w):
    """w (C,) -> (C,) tokens until a past token's weight has halved: ln 2 / exp(w)."""
    return math.log(2.0) / torch.exp(w.double())


def rwkv_decay_explorer(n_channels=8, max_lag=200):
    """Decay of a past token's weight against distance, for channels with w spread over a range.

    The controls set the smallest and largest w; the channels get evenly spaced values between
    them. `result` holds {"w": (C,), "weights": (C, max_lag + 1), "half_life": (C,)}.
    """
    if n_channels < 1:
        raise ValueError(f"n_channels must be at least 1, got {n_channels}")

    def draw(w_min=-6.0, w_max=1.0, max_lag=max_lag):
        lo, hi = min(w_min, w_max), max(w_min, w_max)
        w = torch.linspace(lo, hi, n_channels, dtype=torch.float64)       # (C,)
        weights = decay_curves(w, max_lag)                                # (C, N)
        halves = half_lives(w)                                            # (C,)
        fig, ax = plt.subplots(figsize=(7, 4))
        lags = range(max_lag + 1)
        for c in range(n_channels):
            ax.plot(lags, weights[c].numpy(), label=f"w={w[c]:.2f}, half-life {halves[c]:.3g}")
        ax.set_xlabel("steps back (n)")
        ax.set_ylabel("decay factor exp(-n exp(w))")
        ax.set_ylim(0, 1.02)
        ax.set_title("How far back each channel looks")
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        plt.show()
        return {"w": w, "weights": weights, "half_life": halves}

    return W.interactive(
        draw,
        w_min=W.FloatSlider(value=-6.0, min=-10.0, max=3.0, step=0.25, description="w min"),
        w_max=W.FloatSlider(value=1.0, min=-10.0, max=3.0, step=0.25, description="w max"),
        max_lag=W.IntSlider(value=max_lag, min=10, max=2000, step=10, description="steps shown"),
    )
