"""Notebook 07 beyond its graded cells: sizes counted not typed, a decode timing that is the library's
(not notebook 05's answer), the fair comparison and its fallback, the budget, the profile, the
conclusions' checks of timed numbers (which only run outside grading), the roofline widget.

The in-process namespace (tests/nbtools.run_cells) runs the notebook as the grader does
(NBGRADER_EXECUTION set): two context lengths, no plots, no explorer.
"""

import contextlib
import io
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
    model = ns["EQUAL"]["gpt2"]
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
    source = nbtools.cell(nbtools.solution_nb(NB), "measure_fair").source
    assert "def time_decode" in source and "perf_counter" not in source and "statistics" not in source


def test_fair_comparison_is_at_equal_size_with_both_phases(ns):
    fair = ns["FAIR"]
    g, m = fair["gpt2"]["params"], fair["mamba"]["params"]
    assert max(g, m) <= ns["MAX_SIZE_RATIO"] * min(g, m), "the equal-size pair must pass compare_fairly's own rule"
    assert ns["GRADING"] and ns["CONTEXTS"] == [16, 64], "grading times the smallest sweep"
    for r in fair.values():
        assert len(r["prefill_s"]) == len(r["decode_s"]) == len(ns["CONTEXTS"])
        assert all(t > 0 for t in r["prefill_s"] + r["decode_s"])


def test_grading_counts_what_a_quick_run_counts(ns):
    """The counted numbers of the conclusions are checked against the grader's rerun: its models must be
    the ones a student's QUICK run builds (the models' positions do not follow the grading sweep)."""
    quick_max = 256                                          # max(CONTEXTS) of a QUICK run outside grading
    for fam in ("gpt2", "mamba"):
        cfg = models.make_config(fam, "tiny", **equal_size.equal_size_overrides(fam, "tiny", quick_max))
        assert ns["FAIR"][fam]["params"] == models.n_parameters(models.meta_model(cfg)), fam
    assert max(ns["CONTEXTS"]) < quick_max, "the sweep is shorter while grading; the models are not"


def test_compare_fairly_rejects_bad_arguments(ns):
    f, g, m = ns["compare_fairly"], ns["EQUAL"]["gpt2"], ns["EQUAL"]["mamba"]
    with pytest.raises(ValueError, match="takes a GPT-2 and a Mamba"):
        f(m, g, 8)
    with pytest.raises(ValueError, match="positive int"):
        f(g, m, 0)
    with pytest.raises(ValueError, match="repeat >= 1"):
        f(g, m, 8, repeat=0)


def _run_given(ns, grade_id):
    """Run one given cell of the solution in ns; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), nbtools.grading_environment():
        exec(compile(nbtools.cell(nbtools.solution_nb(NB), grade_id).source, grade_id, "exec"), ns)
    return out.getvalue()


def test_a_failing_compare_fairly_is_replaced_by_the_library(ns):
    """The measurement goes on with archlab's timing when the student's function raises or returns junk."""
    def broken(*args, **kwargs):
        raise NotImplementedError()

    for bad in (broken, lambda *a, **k: {"transformer": {"prefill_s": 0.0}}):
        ns["compare_fairly"] = bad
        printed = _run_given(ns, "measure_fair")
        assert "archlab measures instead" in printed
        for r in ns["FAIR"].values():
            assert len(r["decode_s"]) == len(ns["CONTEXTS"]) and all(t > 0 for t in r["prefill_s"] + r["decode_s"])


def test_a_failing_budget_function_leaves_none_and_the_conclusions_say_why(ns):
    def broken(*args):
        raise NotImplementedError()

    ns["max_context_in_budget"] = broken
    printed = _run_given(ns, "measure_budget")
    assert "raised NotImplementedError" in printed and set(ns["BUDGET_ROWS"].values()) == {None}
    err = nbtools.run_test_cell(nbtools.solution_nb(NB), "q_conclusions", ns)
    assert err is not None and "fix it first" in str(err), err


def _conclusions_error(ns, **changes):
    """The error of q_conclusions' test cell, run as a student runs it (GRADING False), for the solution's
    dict with some entries changed."""
    ns["GRADING"] = False
    ns["q_conclusions"] = dict(ns["q_conclusions"], **changes)
    src = nbtools.cell(nbtools.solution_nb(NB), "test_q_conclusions").source
    try:
        exec(compile(src, "test_q_conclusions", "exec"), ns)
    except AssertionError as e:
        return e
    return None


def test_the_timed_quotes_are_checked_while_the_student_works(ns):
    """Outside grading the test cell compares the quoted times with the run's FAIR, naming mistakes;
    under grading it does not (the solution's times are then the grader's)."""
    fair = ns["FAIR"]
    assert _conclusions_error(dict(ns)) is None
    ms = fair["gpt2"]["decode_s"][-1] * 1e3
    assert _conclusions_error(dict(ns), transformer_decode_ms=round(ms, 3 - int(math.floor(math.log10(ms))) - 1)) \
        is None, "three significant digits are enough"
    cases = {"seconds, not milliseconds": fair["gpt2"]["decode_s"][-1],
             "the shortest context": fair["gpt2"]["decode_s"][0] * 1e3,
             "the prefill": fair["gpt2"]["prefill_s"][-1] * 1e3,
             "the other model's": fair["mamba"]["decode_s"][-1] * 1e3}
    for hint, value in cases.items():
        if abs(value - ms) <= 0.006 * ms:        # two measurements that happen to agree name nothing
            continue
        err = _conclusions_error(dict(ns), transformer_decode_ms=value)
        assert err is not None and hint in str(err), (hint, err)
    err = _conclusions_error(dict(ns), mamba_decode_ms=fair["mamba"]["decode_s"][-1] * 1e3 * 1.1)
    assert err is not None and "rerunning the measurement" in str(err), "a time from another run is not this run's"
    graded = dict(ns, q_conclusions=dict(ns["q_conclusions"], mamba_decode_ms=123.0))
    assert nbtools.run_test_cell(nbtools.solution_nb(NB), "q_conclusions", graded) is None, \
        "while grading the timed numbers are not compared with the grader's times"


def test_the_conclusions_want_a_quick_run(ns):
    err = _conclusions_error(dict(ns, QUICK=False))
    assert err is not None and "QUICK = True" in str(err)


def test_the_profile_labels_every_part_and_runs_on_the_cpu(ns):
    want = {"gpt2": {"attention", "mlp", "lm_head"}, "mamba": {"mixer", "lm_head"},
            "rwkv": {"time-mix", "channel-mix", "head"}, "jamba": {"mamba", "attention", "feed-forward", "lm_head"}}
    assert {f: set(p) for f, p in ns["PROFILE"].items()} == want
    for fam, m in ns["PROFILED"].items():
        assert next(m.parameters()).device.type == "cpu"
        weights = ns["part_params"](m)
        assert set(weights) == want[fam] and sum(weights.values()) <= models.n_parameters(m)
        assert all(ms > 0 for ms in ns["PROFILE"][fam].values())


def test_the_profile_is_the_same_computation_in_every_run(ns, monkeypatch):
    """The question on the profile is checked against the grader's profile, so a student's QUICK run, a
    full-size run and the grader's run profile the same models at the same context length."""
    prompts = []
    real = equal_size.random_ids

    def spy(model, batch, length, **kwargs):
        prompts.append(length)
        return real(model, batch, length, **kwargs)

    monkeypatch.setattr(equal_size, "random_ids", spy)
    runs = {"grading": dict(QUICK=True, GRADING=True, SIZE="tiny", MAX_CONTEXT=256, CONTEXTS=[16, 64]),
            "QUICK": dict(QUICK=True, GRADING=False, SIZE="tiny", MAX_CONTEXT=256, CONTEXTS=[32, 64, 128, 256]),
            "full size": dict(QUICK=False, GRADING=False, SIZE="base", MAX_CONTEXT=2048,
                              CONTEXTS=[128, 512, 1024, 2048])}
    seen = {}
    for run, settings in runs.items():
        prompts.clear()
        run_ns = dict(ns, **settings, n_peak=settings["CONTEXTS"][-1])   # n_peak: the budget cell's longest context
        _run_given(run_ns, "measure_profile")
        sizes = {fam: models.n_parameters(m) for fam, m in run_ns["PROFILED"].items()}
        seen[run] = (sorted(set(prompts)), sizes, sorted(run_ns["PROFILE"]))
    assert seen["QUICK"] == seen["grading"] == seen["full size"], seen


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


def test_roofline_fractions(ns):
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
