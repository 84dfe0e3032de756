"""Power-law fits: how fast a measured cost grows with size, as one least-squares line.

Notebook 01 asks you to write this fit yourself (its exercise ``fit_scaling_exponent``); the
later notebooks, the plots and the benchmark use this one, so every exponent the course
prints comes from the same code. Notebook 01's hidden tests block it (``no_reference``).

Glossary
--------
power law
    ``cost = prefactor * n ** exponent``. Attention's work grows roughly as L**2 in sequence
    length L (exponent 2); a recurrent scan as L**1; a fixed-size state as L**0.
exponent
    ``p`` in cost ≈ c·nᵖ: on log-log axes a power law is a straight line of slope p, since
    log(cost) = p·log(n) + log(c).
fit
    A least-squares straight line through (log n, log cost), i.e. ``numpy.polyfit`` with
    degree 1: its slope is the measured exponent, exp(intercept) the prefactor.
"""

from typing import NamedTuple

import numpy as np


class PowerLaw(NamedTuple):
    """A fitted ``cost = prefactor * n ** exponent`` (unpacks as ``exponent, prefactor``)."""

    exponent: float
    prefactor: float


def fit_power_law(xs, ys):
    """The least-squares power law through ``(xs, ys)``: a :class:`PowerLaw` (exponent, prefactor).

    ``xs`` and ``ys`` are 1-D sequences (lists, NumPy arrays, CPU tensors) of the same length, at
    least two points, all positive (their logarithms are taken): a zero or negative cost is
    refused with a ValueError rather than fitted as an enormous slope.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"xs and ys must be 1-D and the same length; got shapes {xs.shape} and {ys.shape}")
    if len(xs) < 2:
        raise ValueError(f"need at least 2 points to fit a power law; got {len(xs)}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("a power law fit needs positive xs and ys (their logarithms are taken)")
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), deg=1)
    return PowerLaw(float(slope), float(np.exp(intercept)))
