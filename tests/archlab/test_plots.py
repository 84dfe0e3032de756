"""Tests for archlab.plots: log-log scaling plots with their fitted power laws."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from archlab.fits import fit_power_law
from archlab.plots import scaling_plot


def _series():
    xs = np.array([64, 128, 256, 512], dtype=float)
    return {"GPT-2": (xs, 2e-6 * xs**2), "Mamba": (xs, 5e-5 * xs)}


def test_scaling_plot_draws_points_and_fits_with_slopes(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("scaling_plot must not call plt.show"))
    series = _series()
    fig = scaling_plot(series, xlabel="sequence length L", ylabel="seconds", title="forward time")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 2 * len(series)  # one line of points + one fitted line each
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "sequence length L" and ax.get_title() == "forward time"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for label, (xs, ys) in series.items():
        slope, _ = fit_power_law(xs, ys)
        assert f"{label} (slope {slope:.2f})" in legend
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == len(series)


def test_without_fit_there_is_one_line_per_series_and_no_slope():
    series = _series()
    fig = scaling_plot(series, xlabel="x", ylabel="y", fit=False)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == len(series)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(series)


def test_draws_into_a_given_axes():
    series = _series()
    fig, (left, right) = plt.subplots(1, 2)
    try:
        returned = scaling_plot(series, xlabel="x", ylabel="y", ax=right)
        assert returned is fig
        assert len(left.get_lines()) == 0 and len(right.get_lines()) == 2 * len(series)
    finally:
        plt.close(fig)
