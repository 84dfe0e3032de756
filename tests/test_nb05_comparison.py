"""Notebook 05 beyond its graded cells: clear errors, computed = measured bytes, verdicts, the widget.

The verdict rules themselves are tested on synthetic measurements in test_compare_verdicts.py.
"""

import pytest

from archlab import compare

NB = "05_comparison"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_measure_functions_reject_bad_arguments_naming_them(ns):
    m = ns["MODELS"]["gpt2"]
    with pytest.raises(ValueError, match="context_len must be a positive int"):
        ns["measure_prefill"](m, 0)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        ns["measure_decode"](m, 8, batch=0)
    with pytest.raises(ValueError, match="repeat >= 1"):
        ns["measure_prefill"](m, 8, repeat=0)
    with pytest.raises(ValueError, match="compare handles"):
        ns["state_bytes"](type("M", (), {"config": type("C", (), {"model_type": "bert"})()})(), 8)


def test_measured_bytes_equal_the_config_formulas_for_every_model(ns):
    for fam, row in ns["MEAS"]["models"].items():
        assert row["state_bytes"] == row["predicted_bytes"], fam


def test_verdicts_come_from_the_shared_rules_and_cover_every_claim(ns):
    meas = ns["MEAS"]
    table = compare.verdict_table(meas)
    for cid in compare.CLAIMS:
        assert compare.verdict_kind(compare.verdict(cid, meas)) in compare.VERDICTS
    assert table.count("\n|") == len(compare.CLAIMS) + 1, "one row per claim under the header"
    assert compare.VERDICT_RULE in table, "the table states its verdict rule"
    assert compare.verdict("kv_linear", meas) == compare.HOLDS
    assert compare.verdict("mamba_state_constant", meas) == compare.HOLDS
    assert compare.verdict("rwkv_state_constant", meas) == compare.HOLDS


def test_explorer_widget_redraws_when_a_slider_moves(ns):
    w = ns["explorer"]
    context, batch = w.children[:2]
    before = w.result
    assert before["gpt2"]["cache_bytes"] > before["mamba"]["cache_bytes"] > 0
    context.value = 131072
    after = w.result
    assert after["gpt2"]["cache_bytes"] == 16 * before["gpt2"]["cache_bytes"], "KV cache linear in n"
    assert after["mamba"]["cache_bytes"] == before["mamba"]["cache_bytes"], "Mamba's state flat in n"
    assert after["gpt2"]["extrapolated"]
    batch.value = 4
    assert w.result["mamba"]["cache_bytes"] == 4 * after["mamba"]["cache_bytes"]
