"""Notebook 01 beyond its graded cells: clear errors on bad input, a widget that responds."""

import pytest
import torch

NB = "01_self_attention"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_attention_rejects_mismatched_widths_naming_the_shapes(ns):
    sdpa = ns["scaled_dot_product_attention"]
    with pytest.raises(ValueError, match=r"Q \(\.\.\., L, d\) and K \(\.\.\., S, d\) need the same d"):
        sdpa(torch.randn(2, 3, 4), torch.randn(2, 3, 5), torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"need the same S"):
        sdpa(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"mask must broadcast to \(\.\.\., L, S\) = \(3, 4\)"):
        sdpa(torch.randn(3, 4), torch.randn(4, 4), torch.randn(4, 4), torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        sdpa(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), torch.ones(3, 3))


def test_attention_module_rejects_wrong_shapes_naming_the_expected_shape(ns):
    mha = ns["MultiHeadSelfAttention"](16, 4)
    with pytest.raises(ValueError, match=r"\(B, L, D\)|\(B, L, 16\)"):
        mha(torch.randn(5, 16))
    with pytest.raises(ValueError, match="16"):
        mha(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"x_t"):
        mha.step(torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match="divisible"):
        ns["MultiHeadSelfAttention"](10, 3)


def test_explorer_widget_redraws_when_a_slider_moves(ns):
    w = ns["explorer"]
    head, temperature, causal = w.children[:3]
    before = w.result.clone()
    assert torch.allclose(before.sum(-1), torch.ones(len(before)))
    assert bool((before.triu(1) == 0).all()), "causal mask on: no weight above the diagonal"
    head.value = 2
    assert not torch.allclose(w.result, before), "another head shows another pattern"
    temperature.value = 10.0
    flat = w.result
    temperature.value = 0.1
    sharp = w.result
    assert sharp.max(-1).values.mean() > flat.max(-1).values.mean(), "low temperature sharpens rows"
    causal.value = False
    assert bool((w.result.triu(1) > 0).any()), "without the mask, later tokens get weight"
