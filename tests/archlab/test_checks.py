"""Tests for archlab.checks: the messages must tell a student exactly what differs."""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.functional import scaled_dot_product_attention as imported_early

from archlab.checks import (
    assert_close,
    assert_shape,
    check_choice,
    check_shape,
    diagnose,
    no_fused_attention,
    no_reference,
)

# ---- check_shape -------------------------------------------------------------------------

def test_check_shape_accepts_and_binds_names():
    sizes = {}
    check_shape(torch.zeros(2, 5, 8), ("B", "L", "D"), "x", sizes)
    assert sizes == {"B": 2, "L": 5, "D": 8}
    check_shape(torch.zeros(8, 3), ("D", 3), "W", sizes)  # D agrees with the earlier call
    check_shape(torch.zeros(4, 4), ("N", None), "M")


def test_check_shape_wrong_number_of_dims():
    with pytest.raises(ValueError) as info:
        check_shape(torch.zeros(2, 5), ("B", "L", "D"), "x")
    assert "x must have shape (B, L, D) = (2, 5, ?); got (2, 5) with 2 dims" in str(info.value)


def test_check_shape_names_must_agree_within_a_call():
    with pytest.raises(ValueError) as info:
        check_shape(torch.zeros(3, 4), ("D", "D"), "W")
    message = str(info.value)
    assert "W must have shape (D, D) = (3, 3); got (3, 4)" in message
    assert "dim 1" in message


def test_check_shape_names_must_agree_across_calls_and_failures_do_not_bind():
    sizes = {}
    check_shape(torch.zeros(2, 5, 8), ("B", "L", "D"), "x", sizes)
    before = dict(sizes)
    with pytest.raises(ValueError) as info:
        check_shape(torch.zeros(2, 5, 7, 6), ("B", "L", "D", "H"), "y", sizes)
    message = str(info.value)
    assert "y must have shape (B, L, D, H) = (2, 5, 8, 6); got (2, 5, 7, 6)" in message
    assert "dim 2 (D) is 7" in message and "D = 8" in message
    assert sizes == before


def test_check_shape_fixed_sizes():
    with pytest.raises(ValueError) as info:
        check_shape(torch.zeros(3, 4), (3, 5), "W")
    assert "W must have shape (3, 5); got (3, 4)" in str(info.value)
    assert "dim 1 is 4 but must be 5" in str(info.value)


@pytest.mark.parametrize("value", [[1.0, 2.0], np.zeros(3), 3.0])
def test_check_shape_rejects_non_tensors_by_type_name(value):
    with pytest.raises(TypeError) as info:
        check_shape(value, ("N",), "q")
    assert "q must be a torch.Tensor" in str(info.value)
    assert type(value).__name__ in str(info.value)


# ---- assert_shape ------------------------------------------------------------------------

def test_assert_shape_is_strict():
    assert_shape(torch.zeros(2, 3, 4), (2, 3, 4))
    with pytest.raises(AssertionError) as info:
        assert_shape(torch.zeros(2, 3, 4), (2, 3, 5))
    assert str(info.value) == "output has shape (2, 3, 4) but expected (2, 3, 5)"
    with pytest.raises(AssertionError):  # broadcastable is not equal
        assert_shape(torch.zeros(1, 3), (2, 3))
    with pytest.raises(AssertionError, match="scores has shape"):
        assert_shape(torch.zeros(3), (3, 1), name="scores")


# ---- assert_close ------------------------------------------------------------------------

def _reference():
    return torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 7


def test_assert_close_passes_within_tolerance():
    expected = _reference()
    assert assert_close(expected + 1e-7, expected) is None
    assert_close(torch.tensor(0.5), 0.5)
    assert_close(torch.tensor([0.5, 1.5]), np.array([0.5, 1.5]))
    assert_close(torch.tensor([0.0, float("nan")]), torch.tensor([0.0, float("nan")]))


def test_assert_close_type_shape_dtype_are_checked_first():
    expected = _reference()
    with pytest.raises(AssertionError, match="output should be a torch.Tensor; got list"):
        assert_close(expected.tolist(), expected)
    with pytest.raises(AssertionError) as info:
        assert_close(expected[..., :3], expected)
    assert str(info.value) == "output has shape (2, 3, 3) but expected (2, 3, 4)"
    with pytest.raises(AssertionError) as info:
        assert_close(expected.double(), expected)
    assert "dtype torch.float64 but expected torch.float32" in str(info.value)


def test_assert_close_reports_nan_with_position():
    expected = _reference()
    actual = expected.clone()
    actual[1, 0, 2] = float("nan")
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected)
    message = str(info.value)
    assert "1 NaN" in message and "(1, 0, 2)" in message


def test_assert_close_message_says_what_differs():
    expected = _reference()
    actual = expected.clone()
    actual[0, 2, 1] += 0.25
    actual[1, 1, 3] -= 0.5
    rtol, atol = 1e-4, 1e-5
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, rtol=rtol, atol=atol, name="attention output")
    message = str(info.value)
    assert message.startswith("attention output")

    diff = (actual.double() - expected.double()).abs()
    bad = diff > atol + rtol * expected.double().abs()
    rel = (diff / expected.double().abs())[bad]
    first = tuple(torch.nonzero(bad)[0].tolist())
    assert f"{int(bad.sum())} of {expected.numel()} elements" in message
    assert f"max abs error {diff.max().item():.3g}" in message
    assert f"max rel error {rel.max().item():.3g}" in message
    assert f"index {first}" in message
    assert f"actual {actual[first].item():.8g}" in message and f"expected {expected[first].item():.8g}" in message
    assert f"rtol={rtol:g}" in message and f"atol={atol:g}" in message


def test_assert_close_uses_rtol_relative_to_expected():
    big = torch.tensor([1000.0])
    assert_close(big + 0.005, big, rtol=1e-5, atol=0)  # 0.005 <= 1e-5 * 1000
    with pytest.raises(AssertionError, match=re.escape("1 of 1 elements")):
        assert_close(big + 0.05, big, rtol=1e-5, atol=0)
    # rtol scales with |expected|, not |actual| (the check is not symmetric, as in torch.isclose)
    assert_close(torch.tensor([1.0]), torch.tensor([2.0]), rtol=0.6, atol=0)  # 1 <= 0.6 * 2
    with pytest.raises(AssertionError):
        assert_close(torch.tensor([2.0]), torch.tensor([1.0]), rtol=0.6, atol=0)  # 1 > 0.6 * 1


# ---- no_fused_attention ------------------------------------------------------------------

def _qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 5, 4, generator=g) for _ in range(3)]  # (B, H, L, head_dim)


def _manual_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, H, L, L)
    return torch.softmax(scores, dim=-1) @ v


def test_plain_attention_is_allowed_and_correct():
    q, k, v = _qkv()
    with no_fused_attention():
        out = _manual_attention(q, k, v)
    assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda q, k, v: imported_early(q, k, v),  # imported at the top of this file, before the context
    lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
])
def test_fused_attention_is_caught_however_imported(call):
    q, k, v = _qkv()
    with pytest.raises(AssertionError) as info:
        with no_fused_attention("my_attention"):
            call(q, k, v)
    message = str(info.value)
    assert "my_attention must compute attention itself" in message
    assert "torch.nn.functional.scaled_dot_product_attention" in message


def test_multihead_attention_module_is_caught():
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(0))  # (B, L, D)
    with torch.no_grad(), pytest.raises(AssertionError, match="multi_head_attention_forward"):
        with no_fused_attention():
            mha(x, x, x)


def test_fused_attention_works_again_after_the_context():
    q, k, v = _qkv()
    with pytest.raises(AssertionError):
        with no_fused_attention():
            imported_early(q, k, v)
    assert imported_early(q, k, v).shape == q.shape


# ---- diagnosing known mistakes ------------------------------------------------------------

MISTAKES = {"softmax over the queries (dim=-2) instead of the keys (dim=-1)?": [[1.0, 1.0]],
            "no 1/sqrt(d) scaling?": [[0.982, 0.018]]}


def test_a_known_mistake_is_named_first_and_the_mismatch_is_kept():
    with pytest.raises(AssertionError) as info:
        assert_close(torch.tensor([[1.0, 1.0]]), [[0.9, 0.1]], name="weights", mistakes=MISTAKES)
    first, *rest = str(info.value).splitlines()
    assert first == ("weights: this looks like a known mistake: "
                     "softmax over the queries (dim=-2) instead of the keys (dim=-1)?")
    assert any("first mismatch at index" in line for line in rest)


def test_an_unknown_mistake_gets_the_plain_message_and_a_right_answer_passes():
    with pytest.raises(AssertionError) as info:
        assert_close(torch.tensor([[0.5, 0.5]]), [[0.9, 0.1]], name="weights", mistakes=MISTAKES)
    assert str(info.value).startswith("weights is not close to expected")
    assert_close(torch.tensor([[0.9, 0.1]]), [[0.9, 0.1]], name="weights", mistakes=MISTAKES)


def test_diagnose_ignores_mistakes_of_another_shape():
    assert diagnose(torch.ones(3), {"wrong shape": [1.0, 1.0]}) is None
    assert diagnose(torch.ones(2), {"wrong shape": [1.0, 1.0]}) == "wrong shape"


def test_diagnose_takes_predicates_and_survives_ones_that_fail():
    def broken(_):
        raise IndexError("this predicate cannot judge a 1-d answer")
    mistakes = {"broken": broken, "all negative": lambda a: bool((a < 0).all())}
    assert diagnose(-torch.ones(3), mistakes) == "all negative"
    assert diagnose(torch.ones(3), mistakes) is None


# ---- checkpoint questions ----------------------------------------------------------------

@pytest.mark.parametrize("answer, says", [("b", "write 'B', not 'b'"), ("B.", "write 'B', not 'B.'"),
                                          ("E", "must be one of 'A', 'B', 'C', 'D'; got 'E'"),
                                          (2, "must be a string holding one letter")])
def test_check_choice_says_what_form_is_wrong(answer, says):
    with pytest.raises(AssertionError, match=re.escape(says)):
        check_choice(answer, "q1_choice")
    check_choice("C", "q1_choice")


# ---- no shortcut through a reference ------------------------------------------------------

def _own_rms(x):
    return x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()


@pytest.mark.parametrize("target", ["torch.nn.modules.normalization", torch.nn.RMSNorm,
                                    torch.nn.RMSNorm.forward, "torch.nn.modules"])
def test_no_reference_catches_a_call_into_the_reference(target):
    norm = torch.nn.RMSNorm(4)
    x = torch.randn(2, 4)
    with pytest.raises(AssertionError,
                       match=r"must be your own code: it called the reference implementation torch\.nn"):
        with no_reference(target, who="rms_norm"):
            norm(x)
    with no_reference(target, who="rms_norm"):      # own code passes
        _own_rms(x)
    import sys
    assert sys.getprofile() is None, "the profile hook must be removed after the block"


def test_no_reference_skips_names_that_do_not_exist_here():
    with no_reference("a_package_that_is_not_installed", who="x"):
        _own_rms(torch.randn(2, 4))
