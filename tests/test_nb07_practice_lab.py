"""Notebook 07 beyond its graded cell: the fair comparison's shape, the budget, the roofline widget."""

import math

import pytest

from archlab import compare, models

NB = "07_practice_lab"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_reading_example_output_shape_and_block_source(ns):
    assert tuple(ns["y"].shape) == (1, 10, 32)
    assert ns["mamba_source"]


def test_fair_comparison_is_at_equal_size_with_both_phases(ns):
    fair = ns["FAIR"]
    g, m = fair["gpt2"]["params"], fair["mamba"]["params"]
    assert 0.7 < g / m < 1.4, "the two models must have about the same number of parameters"
    for r in fair.values():
        assert len(r["prefill_s"]) == len(r["decode_s"]) == len(ns["CONTEXTS"])
        assert all(t > 0 for t in r["prefill_s"] + r["decode_s"])


def test_budget_rejects_negative_sizes_and_matches_the_notebook(ns):
    f = ns["max_context_in_budget"]
    with pytest.raises(ValueError, match=">= 0"):
        f(models.make_config("gpt2", "tiny"), -1, 0)
    assert ns["BUDGET_ROWS"]["mamba"] == math.inf and ns["BUDGET_ROWS"]["rwkv"] == math.inf
    assert ns["BUDGET_ROWS"]["jamba"] > ns["BUDGET_ROWS"]["gpt2"] > 0


def test_profile_has_parts_for_every_model_and_roofline_fractions(ns):
    assert set(ns["PROFILE"]) == set(compare.FAMILIES)
    assert all(ns["PROFILE"][f] for f in compare.FAMILIES)
    for r in ns["ROOF"].values():
        assert 0 < r["fraction"] and r["t_min"] == pytest.approx(r["bytes"] / ns["BANDWIDTH"])


def test_roofline_widget_redraws_when_a_slider_moves(ns):
    w = ns["roofline"]
    context, batch = w.children[:2]
    before = w.result
    context.value = 131072
    after = w.result
    assert after["gpt2"]["bytes"] > before["gpt2"]["bytes"], "the KV cache grows with n"
    assert after["mamba"]["bytes"] == before["mamba"]["bytes"], "Mamba reads the same bytes at any n"
    batch.value = 64
    assert w.result["mamba"]["t_token"] < after["mamba"]["t_token"], "batching shares the weight reads"
