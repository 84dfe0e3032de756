"""Tests for archlab.fits: the one power-law fit the course uses (notebook 01 teaches it)."""

import numpy as np
import pytest

from archlab.fits import PowerLaw, fit_power_law


def test_exact_power_law_is_recovered():
    xs = np.array([16, 32, 64, 128, 256], dtype=float)
    exponent, prefactor = fit_power_law(xs, 3 * xs**2)
    assert abs(exponent - 2) < 1e-9
    assert abs(prefactor - 3) < 1e-9


def test_noisy_power_law_is_close():
    rng = np.random.default_rng(0)
    xs = np.geomspace(10, 1e4, 20)
    ys = 0.5 * xs**1.5 * np.exp(rng.normal(0, 0.01, xs.shape))
    exponent, _ = fit_power_law(xs, ys)
    assert abs(exponent - 1.5) < 0.02


@pytest.mark.parametrize("xs, ys", [([1, 2], [1, -2]), ([0, 1], [1, 2]), ([1], [1]), ([1, 2, 3], [1, 2])])
def test_bad_inputs_are_rejected(xs, ys):
    with pytest.raises(ValueError):
        fit_power_law(xs, ys)


def test_the_fit_is_a_named_pair_of_python_floats():
    fit = fit_power_law([1, 2, 4, 8], [3, 12, 48, 192])
    assert isinstance(fit, PowerLaw) and fit == (fit.exponent, fit.prefactor)
    assert type(fit.exponent) is float and type(fit.prefactor) is float
    assert abs(fit.exponent - 2) < 1e-9 and abs(fit.prefactor - 3) < 1e-9


def test_a_zero_cost_is_refused_not_fitted():
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2, 4], [1.0, 0.0, 4.0])
