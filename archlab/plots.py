"""Log-log plots of how time or memory grows with size, with fitted power laws.

Glossary
--------
log-log plot
    Both axes logarithmic. A power law ``y = prefactor * x ** exponent`` becomes a straight
    line whose slope is the exponent, since log y = exponent * log x + log prefactor.
fitted line
    The least-squares power law of :func:`archlab.fits.fit_power_law`, drawn dashed.
"""

import matplotlib.pyplot as plt
import numpy as np

from archlab import fits


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
            exponent, prefactor = fits.fit_power_law(xs, ys)
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
