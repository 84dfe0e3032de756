"""Notebook 05 beyond its graded cells: clear errors, the simulated GPU of its timing tests, the
measurement that keeps going when a learner's function fails, verdicts, grading sizes, the widget.

The in-process namespace (tests/nbtools.run_cells) runs the notebook as the grader does
(NBGRADER_EXECUTION set): the small sweep, no plots. The verdict rules themselves are tested on
synthetic measurements with archlab.verdicts in tests/archlab/test_compare.py.
"""

import contextlib
import io
import time

import pytest
import torch

import archlab.device
import nbtools
from archlab import verdicts, widgets

NB = "05_comparison"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def _cell_source(grade_id=None, containing=None):
    nb = nbtools.solution_nb(NB)
    if grade_id:
        return nbtools.cell(nb, grade_id).source
    return next(c.source for c in nb.cells if c.cell_type == "code" and containing in c.source)


def test_measure_functions_reject_bad_arguments_naming_them(ns):
    m = ns["MODELS"]["gpt2"]
    with pytest.raises(ValueError, match="context_len must be a positive int"):
        ns["measure_prefill"](m, 0)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        ns["measure_decode"](m, 8, batch=0)
    with pytest.raises(ValueError, match="repeat >= 1"):
        ns["measure_prefill"](m, 8, repeat=0)
    with pytest.raises(ValueError, match="equal_size handles"):
        ns["state_bytes"](type("M", (), {"config": type("C", (), {"model_type": "bert"})()})(), 8)


def test_the_simulated_gpu_charges_queued_work_to_whoever_waits_for_it(ns):
    """The arithmetic the visible timing tests rely on, worked by hand."""
    gpu = ns["SimulatedGPU"](lambda call, tokens: [0.5, 0.25][call])
    gpu.launch(3)                   # returns at once: the host clock has not moved
    assert gpu.now == 0.0 and gpu.busy_until == 0.5
    gpu.launch(1)                   # queued behind the first
    assert gpu.busy_until == 0.75
    gpu.synchronize()
    assert gpu.now == 0.75
    gpu.synchronize()               # nothing queued: no time passes
    assert gpu.now == 0.75


def test_spies_restore_every_clock_and_synchronize_even_when_the_answer_raises(ns):
    real = (time.perf_counter, time.time, time.monotonic, archlab.device.synchronize, torch.cuda.synchronize,
            ns["synchronize"])
    model = ns["MODELS"]["gpt2"]

    def boom():
        assert time.perf_counter() == 0.0, "inside a spied run the clock reads the simulated time"
        raise RuntimeError("an answer that fails")

    with pytest.raises(RuntimeError, match="an answer that fails"):
        ns["_spy_run"](boom, model, ns["measure_prefill"], lambda call, tokens: 1.0)
    assert (time.perf_counter, time.time, time.monotonic, archlab.device.synchronize, torch.cuda.synchronize,
            ns["synchronize"]) == real
    assert not model._forward_pre_hooks, "the forward spy is removed"


def test_the_solution_times_the_simulated_gpu_exactly(ns):
    model = ns["MODELS"]["gpt2"]
    def cost(call, tokens):
        return 0.001 * (call + 1)
    result, events = ns["_spy_run"](lambda: ns["measure_prefill"](model, 8, warmup=2, repeat=3), model,
                                    ns["measure_prefill"], cost)
    assert result == pytest.approx(0.004)          # calls 2, 3, 4 cost 3, 4, 5 ms: the median is 4 ms
    assert [e[2] for e in ns["_forwards"](events)] == [8] * 5


def test_measured_bytes_equal_the_config_formulas_for_every_model(ns):
    for fam, row in ns["MEAS"]["models"].items():
        assert row["state_bytes"] == row["predicted_bytes"], fam


def test_grading_measures_the_smallest_sweep_and_skips_what_no_test_reads(ns):
    assert ns["GRADING"] and ns["CONTEXTS"] == [16, 64]
    assert ns["MEAS"]["contexts"] == [16, 64]
    assert "GEN" not in ns and "explorer" not in ns, "generation timing and the explorer are skipped while grading"
    assert not ns["REPLACED"], f"the solution's own functions measured everything: {ns['REPLACED']}"


def test_measurement_goes_on_with_archlab_when_a_learners_function_fails(ns):
    """A broken measure_decode must not cost the points of facts (graded on MEAS)."""
    ns = dict(ns)
    ns["MODELS"] = {f: ns["MODELS"][f] for f in ("gpt2", "mamba")}
    ns["REPLACED"] = {}

    def broken_decode(*args, **kwargs):
        raise NotImplementedError()

    ns["measure_decode"] = broken_decode
    ns["state_bytes"] = lambda *args, **kwargs: -1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_cell_source("measure_all"), ns)
    assert set(ns["REPLACED"]) == {"measure_decode", "state_bytes"}
    assert "your measure_decode raised NotImplementedError" in out.getvalue()
    assert "your state_bytes returned -1" in out.getvalue()
    for fam, row in ns["MEAS"]["models"].items():
        assert all(t > 0 for t in row["decode_s"]) and row["state_bytes"] == row["predicted_bytes"], fam


def test_verdicts_come_from_the_shared_rules_and_cover_every_claim(ns):
    meas = ns["MEAS"]
    table = verdicts.verdict_table(meas)
    for cid in verdicts.CLAIMS:
        assert verdicts.verdict_kind(verdicts.verdict(cid, meas)) in verdicts.VERDICTS
    assert table.count("\n|") == len(verdicts.CLAIMS) + 1, "one row per claim under the header"
    assert verdicts.VERDICT_RULE in table, "the table states its verdict rule"
    assert verdicts.verdict("kv_linear", meas) == verdicts.HOLDS
    assert verdicts.verdict("mamba_state_constant", meas) == verdicts.HOLDS
    assert verdicts.verdict("rwkv_state_constant", meas) == verdicts.HOLDS


def test_jamba_3x_is_not_judged_by_a_ratio_against_gpt2(ns):
    """§5's "Jamba ~3x faster than Mixtral" needs a Mixtral; 05 measures none, and says so."""
    assert "mixtral" not in ns["MEAS"]["models"]
    assert verdicts.verdict("jamba_3x", ns["MEAS"]).startswith(verdicts.NOT_MEASURED)
    text = "\n".join(c.source for c in nbtools.release_nb(NB).cells if c.cell_type == "markdown")
    assert "not measured here" in text and "Mixtral" in text


def test_bench_results_are_found_through_the_course_folder_or_a_note_is_printed(ns, monkeypatch):
    src = _cell_source(containing='course_file("bench", "results")')
    for found, expected in ((None, "note: no bench/results folder"), (ns["course_file"]("bench", "results"), None)):
        run = dict(ns, GRADING=False, course_file=lambda *parts, found=found: found)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(src, run)
        if expected:
            assert expected in out.getvalue()
        else:
            assert "note:" not in out.getvalue(), out.getvalue()


def test_explorer_widget_redraws_when_each_control_moves(ns):
    w = widgets.comparison_explorer(ns["MEAS"], {f: m.config for f, m in ns["MODELS"].items()})
    context, batch = w.children[:2]
    before = w.result
    assert before["gpt2"]["cache_bytes"] > before["mamba"]["cache_bytes"] > 0
    context.value = 131072
    after = w.result
    assert after["gpt2"]["cache_bytes"] == 16 * before["gpt2"]["cache_bytes"], "KV cache linear in n"
    assert after["mamba"]["cache_bytes"] == before["mamba"]["cache_bytes"], "Mamba's state flat in n"
    assert after["gpt2"]["decode_s"] != before["gpt2"]["decode_s"], "the fitted decode time follows the context"
    assert after["gpt2"]["extrapolated"]
    batch.value = 4
    assert w.result["mamba"]["cache_bytes"] == 4 * after["mamba"]["cache_bytes"]


# Phrases of §10 that classify the reading's speed claims (the answer to q_claims) or show the verdicts.
_CLASSIFYING = ("throughput* at large batch", "not the batch-1 latency", "statement about batched serving",
                "verdicts.verdict_table(MEAS)")


def test_no_claim_is_classified_above_the_classification_exercise():
    """q_claims asks which speed claims are batch-1 latency and which large-batch throughput; the notes and the
    verdict table that say so come after it in the student's notebook, so the answer cannot be copied from above."""
    rel = nbtools.release_nb(NB)
    at = next(i for i, c in enumerate(rel.cells) if nbtools.nbgrader_meta(c).get("grade_id") == "q_claims")
    above = " ".join(" ".join(c.source.split()) for c in rel.cells[:at])
    below = " ".join(" ".join(c.source.split()) for c in rel.cells[at:])
    for phrase in _CLASSIFYING:
        assert phrase not in above, f"{phrase!r} is written above q_claims: it gives the classification away"
        assert phrase in below, f"{phrase!r} is gone from the notebook: update _CLASSIFYING"


def test_q_claims_testable_fields_follow_the_verdict_rules(ns):
    """The solution's testable_here agrees with archlab.verdicts on MEAS: the two speed claims from the papers
    are 'not measured here', the notebook's own two figures are judged."""
    claims, meas = ns["q_claims"], ns["MEAS"]
    rows = {"mamba_5x": "mamba_5x", "jamba_3x": "jamba_3x", "gpt2_decode": "transformer_decode_grows",
            "mamba_state": "mamba_state_constant"}
    for cid, row in rows.items():
        judged = not verdicts.verdict(row, meas).startswith(verdicts.NOT_MEASURED)
        assert claims[cid]["testable_here"] is judged, cid
    assert [cid for cid, c in claims.items() if not c["testable_here"]] == ["mamba_5x", "jamba_3x"]
