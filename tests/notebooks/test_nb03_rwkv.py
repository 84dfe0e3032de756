"""Notebook 03 beyond its graded cells: clear errors on bad input, every control of the decay
widget changes its plot, the blocks' grades do not depend on the WKV exercises, grading runs the
experiment small, and the experiment's figures hold (flat RWKV state, linear KV cache,
state-only generation)."""

import math

import pytest
import torch

import nbtools
from archlab import widgets
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


def test_decay_widget_redraws_when_a_slider_moves():
    w = widgets.rwkv_decay_explorer(n_channels=8)   # as the notebook builds it (not under grading)
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


def test_decay_widget_every_control_changes_the_plot():
    """Each slider, moved alone from the defaults (one step either way, and to both ends), redraws a
    different, non-empty plot."""
    w = widgets.rwkv_decay_explorer(n_channels=8)
    controls = w.children[:-1]
    assert [c.description for c in controls] == ["w min", "w max", "steps shown"]
    for control in controls:
        default = control.value
        control.value = default
        base = nbtools.figure_digest()
        values = [x for x in (default + control.step, default - control.step, control.min, control.max)
                  if control.min <= x <= control.max and x != default]
        for value in values:
            control.value = value
            assert nbtools.figure_digest() != base, f"moving {control.description!r} to {value} left the plot unchanged"
        control.value = default


def _with_cells(ns0, nb, code, *cells):
    """A copy of the namespace with `code` run, then the given answer cells re-defined in it."""
    ns = dict(ns0)
    exec(code, ns)
    for gid in cells:
        exec(nbtools.strip_markers(nbtools.cell(nb, gid).source), ns)
    return ns


_SHORTCUTS = {   # right values through Hugging Face's code: each fails its own exercise's hidden tests
    "wkv_parallel": ("from transformers.models.rwkv.modeling_rwkv import rwkv_linear_attention_cpu\n"
                     "def wkv_parallel(w, u, k, v):\n    return rwkv_linear_attention_cpu(w, u, k, v)[0]\n"),
    "wkv_recurrent": ("from transformers.models.rwkv.modeling_rwkv import rwkv_linear_attention_cpu\n"
                      "def wkv_recurrent(w, u, k, v, state=None, return_state=False):\n"
                      "    out, st = rwkv_linear_attention_cpu(w, u, k, v, state=state, return_state=True)\n"
                      "    return (out, tuple(st)) if return_state else out\n"),
}


def _timemix_calling(nb, wkv_name):
    """The solution's TimeMix cell with forward calling wkv_name."""
    src = nbtools.strip_markers(nbtools.cell(nb, "TimeMix").source)
    calls = [f"wkv = {name}(self.time_decay, self.time_first, k, v)" for name in _SHORTCUTS]
    assert sum(c in src for c in calls) == 1, "TimeMix.forward must make exactly one of the WKV calls"
    for c in calls:
        src = src.replace(c, f"wkv = {wkv_name}(self.time_decay, self.time_first, k, v)")
    return src


@pytest.mark.parametrize("wkv_name", sorted(_SHORTCUTS))
def test_timemix_passes_with_either_wkv_in_forward(executed, wkv_name):
    """A forward that calls wkv_recurrent and one that calls wkv_parallel both pass TimeMix's test
    cell, the visible part and the whole: the two are the same function of their inputs."""
    nb, ns0 = executed(NB)
    ns = dict(ns0)
    exec(_timemix_calling(nb, wkv_name), ns)
    assert nbtools.run_test_cell(nb, "TimeMix", dict(ns), visible_only=True) is None
    assert nbtools.run_test_cell(nb, "TimeMix", ns) is None


@pytest.mark.parametrize("wkv_name", sorted(_SHORTCUTS))
def test_timemix_grade_does_not_depend_on_the_wkv_exercise(executed, wkv_name):
    """TimeMix keeps its points (hidden tests included) when the WKV its forward calls, wkv_recurrent
    or wkv_parallel, is a shortcut through Hugging Face's code that fails its own hidden tests; both
    blocks' tests put the student's functions back afterwards."""
    nb, ns0 = executed(NB)
    ns = _with_cells(ns0, nb, _SHORTCUTS[wkv_name], "ChannelMix")
    exec(_timemix_calling(nb, wkv_name), ns)
    mine = ns[wkv_name]
    assert nbtools.run_test_cell(nb, wkv_name, dict(ns)) is not None, "the shortcut must fail its own test"
    assert nbtools.run_test_cell(nb, "TimeMix", ns) is None
    assert nbtools.run_test_cell(nb, "ChannelMix", ns) is None
    for name in ("wkv_parallel", "wkv_recurrent", "token_shift"):
        want = mine if name == wkv_name else ns0[name]
        assert ns[name] is want, f"the blocks' tests must put the student's {name} back"


def test_grading_runs_the_experiment_small(ns):
    """Under NBGRADER_EXECUTION (set by the in-process run): 32 generated tokens, no decode timing, no widget."""
    assert ns["GRADING"] and ns["n_gen"] == 32 and ns["contexts"] == [] and ns["decay_explorer"] is None
    assert ns["step_time"] == {"RWKV tiny": [], "GPT-2 tiny": []}


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
