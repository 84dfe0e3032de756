"""Notebook 07 beyond its graded cell: sizes counted not typed, a decode timing that is the library's
(not notebook 05's answer), the fair comparison, the budget, the roofline widget.

The in-process namespace (tests/nbtools.run_cells) runs the notebook as the grader does
(NBGRADER_EXECUTION set): two context lengths, no plots, no explorer.
"""

import math

import pytest

import archlab.measure
import nbtools
from archlab import cost, equal_size, models, widgets

NB = "07_practice_lab"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_reading_example_output_shape_and_block_source(ns):
    assert tuple(ns["y"].shape) == (1, 10, 32)
    assert ns["mamba_source"]


def test_step4_sizes_are_counted_and_equal_the_closed_forms(ns):
    """GPT-2 small and the reading's Mamba(d_model=768, d_state=64, d_conv=4, expand=2), by formula."""
    V, P, D, L = 50257, 1024, 768, 12                      # GPT-2 small's published shape
    gpt2 = V * D + P * D + L * (12 * D * D + 13 * D) + 2 * D
    E, N, K, R = 2 * D, 64, 4, math.ceil(D / 16)           # d_inner, d_state, d_conv, dt_rank
    block = (D * 2 * E) + (E * K + E) + E * (R + 2 * N) + (R * E + E) + E * N + E + E * D
    assert ns["gpt2_small_params"] == gpt2
    assert ns["block_768_params"] == block
    markdown = "\n".join(c.source for c in nbtools.release_nb(NB).cells if c.cell_type == "markdown")
    for typed in (f"{block:,}", f"{block / 1e6:.2f}M", f"{gpt2:,}", "about 5M —"):
        assert typed not in markdown, f"the notebook's text types {typed!r}: print it from the count"


def test_time_decode_is_time_fn_around_the_cache_aware_forward(ns, monkeypatch):
    """07 times decode with the library (archlab.measure.time_fn), never with a copy of 05's answer."""
    model = ns["PAIR"]["gpt2"]
    calls, forwards = [], []
    real = archlab.measure.time_fn

    def spy(fn, **kwargs):
        calls.append(kwargs)
        return real(fn, **kwargs)

    monkeypatch.setattr(archlab.measure, "time_fn", spy)
    handle = model.register_forward_pre_hook(
        lambda mod, args, kwargs: forwards.append((args[0].shape[1], kwargs.get("past_key_values") is not None)),
        with_kwargs=True)
    try:
        t = ns["time_decode"](model, 20, steps=3, warmup=2)
    finally:
        handle.remove()
    assert t > 0 and len(calls) == 1 and calls[0]["repeat"] == 3 and calls[0]["warmup"] == 2
    assert forwards[0] == (20, False), "a prefill of the 20-token prompt first"
    assert forwards[1:] == [(1, True)] * 5, "then one token at a time with the cache, 2 warm-up + 3 timed"
    source = nbtools.cell(nbtools.solution_nb(NB), "setup").source + "".join(
        c.source for c in nbtools.solution_nb(NB).cells if "def time_decode" in c.source)
    assert "perf_counter" not in source and "statistics" not in source


def test_fair_comparison_is_at_equal_size_with_both_phases(ns):
    fair = ns["FAIR"]
    g, m = fair["gpt2"]["params"], fair["mamba"]["params"]
    assert 0.7 < g / m < 1.4, "the two models must have about the same number of parameters"
    assert ns["GRADING"] and ns["CONTEXTS"] == [16, 64], "grading times the smallest sweep"
    for r in fair.values():
        assert len(r["prefill_s"]) == len(r["decode_s"]) == len(ns["CONTEXTS"])
        assert all(t > 0 for t in r["prefill_s"] + r["decode_s"])


def test_budget_rejects_bad_arguments_and_matches_the_notebook(ns):
    f = ns["max_context_in_budget"]
    with pytest.raises(ValueError, match=">= 0"):
        f(lambda n: n, -1, 0)
    with pytest.raises(TypeError, match="must be a function"):
        f(models.make_config("gpt2", "tiny"), 10, 0)
    assert ns["BUDGET_ROWS"]["mamba"] == math.inf and ns["BUDGET_ROWS"]["rwkv"] == math.inf
    assert ns["BUDGET_ROWS"]["jamba"] > ns["BUDGET_ROWS"]["gpt2"] > 0


def test_budget_helpers_agree_where_transformers_runs_on_the_meta_device(ns, monkeypatch):
    """The notebook's cache_bytes_at is transformers' own cache (meta device) for Mamba and Jamba and
    the configuration's formula for GPT-2 and RWKV (and for all four while grading): both give the
    same bytes where both run."""
    monkeypatch.setitem(ns["cache_helper"].__globals__, "GRADING", False)
    for fam in ("mamba", "jamba"):
        cfg = models.make_config(fam, "tiny")
        assert [ns["cache_helper"](cfg)(n) for n in (1, 2)] == [cost.predicted_state_bytes(cfg, n) for n in (1, 2)], fam


def test_profile_has_parts_for_every_model_and_roofline_fractions(ns):
    assert set(ns["PROFILE"]) == set(equal_size.FAMILIES)
    assert all(ns["PROFILE"][f] for f in equal_size.FAMILIES)
    for r in ns["ROOF"].values():
        assert 0 < r["fraction"] and r["t_min"] == pytest.approx(r["bytes"] / ns["BANDWIDTH"])


def test_roofline_widget_redraws_when_each_control_moves(ns):
    assert "roofline" not in ns, "the explorer is not drawn while grading"
    w = widgets.roofline_explorer(ns["BANDWIDTH"], {f: m.config for f, m in ns["EQUAL"].items()},
                                  {f: cost.active_weight_bytes(m) for f, m in ns["EQUAL"].items()})
    context, batch = w.children[:2]
    before = w.result
    context.value = 131072
    after = w.result
    assert after["gpt2"]["bytes"] > before["gpt2"]["bytes"], "the KV cache grows with n"
    assert after["mamba"]["bytes"] == before["mamba"]["bytes"], "Mamba reads the same bytes at any n"
    batch.value = 64
    assert w.result["mamba"]["t_token"] < after["mamba"]["t_token"], "batching shares the weight reads"
