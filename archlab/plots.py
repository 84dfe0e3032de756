"""Log-log plots of how time or memory grows with size, with fitted power laws.

Glossary
--------
power law
    ``y = prefactor * x ** exponent``. Attention's work grows roughly as
    L**2 in sequence length L (exponent 2); a recurrent scan as L**1.
log-log plot
    Both axes logarithmic. A power law becomes a straight line whose slope is
    the exponent, since log y = exponent * log x + log prefactor.
fit
    A least-squares straight line through (log x, log y), i.e. numpy.polyfit
    with degree 1. The slope is the measured exponent.
"""

import matplotlib.pyplot as plt
import numpy as np


def fit_power_law(xs, ys):
    """Return ``(exponent, prefactor)`` of the best fit ``y = prefactor * x**exponent``."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"xs and ys must be 1-D and the same length; got shapes {xs.shape} and {ys.shape}")
    if len(xs) < 2:
        raise ValueError(f"need at least 2 points to fit a power law; got {len(xs)}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("a power law fit needs positive xs and ys (their logarithms are taken)")
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), deg=1)
    return float(slope), float(np.exp(intercept))


def scaling_plot(series, *, xlabel, ylabel, title="", fit=True, ax=None):
    """Plot ``series`` (label -> (xs, ys)) on log-log axes; return the Figure.

    With ``fit=True`` each series gets a dashed fitted line in the same colour,
    and its legend entry shows the slope, e.g. "GPT-2 (slope 1.02)".
    A new figure is detached from pyplot (plt.close) so that a notebook shows
    it exactly once: as the value of the cell, or with ``display(fig)``.
    Pass ``ax`` to draw into an existing figure instead.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
        plt.close(fig)  # otherwise Jupyter shows it twice: once open, once returned
    else:
        fig = ax.figure
    for label, (xs, ys) in series.items():
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if fit and len(xs) >= 2:
            exponent, prefactor = fit_power_law(xs, ys)
            (points,) = ax.plot(xs, ys, marker="o", linestyle="-", label=f"{label} (slope {exponent:.2f})")
            grid = np.geomspace(xs.min(), xs.max(), 50)
            ax.plot(grid, prefactor * grid**exponent, linestyle="--", color=points.get_color(),
                    alpha=0.7, label="_nolegend_")
        else:
            ax.plot(xs, ys, marker="o", linestyle="-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig
