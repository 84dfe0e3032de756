"""Notebook 03 beyond its graded cells: clear errors on bad input, the decay widget responds,
and the experiment's figures hold (flat RWKV state, linear KV cache, state-only generation)."""

import math

import pytest
import torch

from archlab.widgets.rwkv import decay_curves, half_lives

NB = "03_rwkv"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_wkv_rejects_mismatched_shapes_naming_the_expected_shape(ns):
    k = torch.randn(2, 5, 4)
    for fn in (ns["wkv_recurrent"], ns["wkv_parallel"]):
        with pytest.raises(ValueError, match=r"w \(time_decay\) must have shape \(C\) = \(4\)"):
            fn(torch.randn(3), torch.randn(4), k, k)
        with pytest.raises(ValueError, match=r"v must have shape \(B, T, C\) = \(2, 5, 4\)"):
            fn(torch.randn(4), torch.randn(4), k, torch.randn(2, 6, 4))
        with pytest.raises(ValueError, match=r"k must have shape \(B, T, C\)"):
            fn(torch.randn(4), torch.randn(4), torch.randn(5, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"state num must have shape \(B, C\) = \(2, 4\)"):
        ns["wkv_recurrent"](torch.randn(4), torch.randn(4), k, k, state=(torch.zeros(3, 4),) * 3)
    with pytest.raises(ValueError, match=r"tuple \(num, den, max\)"):
        ns["wkv_recurrent"](torch.randn(4), torch.randn(4), k, k, state=(torch.zeros(2, 4),) * 2)


def test_blocks_reject_wrong_shapes(ns):
    tm, cm = ns["TimeMix"](8), ns["ChannelMix"](8, 16)
    for block in (tm, cm):
        with pytest.raises(ValueError, match=r"x must have shape \(B, T, 8\)"):
            block(torch.randn(2, 5, 6))
        with pytest.raises(ValueError, match=r"x_t must have shape \(B, 1, 8\)"):
            block.step(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, C\)"):
        ns["token_shift"](torch.randn(5, 4))


def test_wkv_half_precision_input_is_computed_in_float32(ns):
    g = torch.Generator().manual_seed(0)
    w, u = torch.randn(4, generator=g), torch.randn(4, generator=g)
    k, v = torch.randn(1, 6, 4, generator=g), torch.randn(1, 6, 4, generator=g)
    ref = ns["wkv_recurrent"](w, u, k, v)
    got = ns["wkv_recurrent"](w, u, k.bfloat16(), v.bfloat16())
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), ref, atol=0.05), "bfloat16 inputs are rounded, the sums are not"


def test_decay_widget_redraws_when_a_slider_moves(ns):
    w = ns["decay_explorer"]
    w_min, w_max, max_lag = w.children[:3]
    before = w.result
    assert before["weights"].shape == (8, max_lag.value + 1)
    assert torch.allclose(before["weights"][:, 0], torch.ones(8, dtype=torch.float64))
    slowest = before["half_life"].max()
    w_min.value = -9.0                                   # a slower channel appears
    assert w.result["half_life"].max() > slowest
    w_max.value = -9.0                                   # all channels slow: the weights barely decay
    assert float(w.result["weights"][:, -1].min()) > 0.97
    max_lag.value = 50
    assert w.result["weights"].shape == (8, 51)


def test_decay_helpers_match_the_formula():
    w = torch.tensor([math.log(math.log(2.0)), 0.0])
    curves = decay_curves(w, 3)
    assert torch.allclose(curves[0], torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64))
    assert torch.allclose(half_lives(w), torch.tensor([1.0, math.log(2.0)], dtype=torch.float64))


def test_experiment_state_is_flat_and_kv_cache_linear(ns):
    rwkv_bytes, gpt_bytes = ns["rwkv_bytes"], ns["gpt_bytes"]
    assert len(set(rwkv_bytes)) == 1, "the RWKV state must not grow"
    assert rwkv_bytes[0] == ns["state_formula"]
    steps = {b - a for a, b in zip(gpt_bytes, gpt_bytes[1:])}
    assert len(steps) == 1 and steps.pop() > 0, "the KV cache grows by the same bytes per token"
    assert ns["torch"].equal(ns["mine_ids"], ns["outputs"]), "state-only greedy loop = generate"
