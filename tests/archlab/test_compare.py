"""archlab.verdicts can say no, and never speak for what did not run (issues 13 and 14).

A verdict is "holds", "does not hold here" or "not measured here (needs X)": the reading's
"~5x faster" (large-batch GPU throughput) is not judged by a batch-1 CPU latency ratio, and
"Jamba ~3x faster than Mixtral" is not judged by a Jamba-vs-GPT-2 ratio.
"""

import copy

import pytest

from archlab import cost, models, verdicts

N = [1000, 2000, 4000, 8000]


def synthetic(device="cpu", batch=1):
    """Measurements with known exponents and ratios (the values follow from the formulas)."""
    return {"contexts": N, "batch": batch, "device": device, "models": {
        "gpt2": {"prefill_s": [x * x * 1e-9 for x in N], "decode_s": [1e-5 * x for x in N],
                 "state_bytes": [10 * x for x in N]},
        "mamba": {"prefill_s": [1e-6 * x for x in N], "decode_s": [1e-3] * 4, "state_bytes": [500] * 4},
        "rwkv": {"prefill_s": [1e-6 * x for x in N], "decode_s": [1e-3] * 4, "state_bytes": [50] * 4},
        "jamba": {"prefill_s": [1e-6 * x for x in N], "decode_s": [5e-3] * 4, "state_bytes": [x + 500 for x in N]}}}


def test_every_verdict_is_one_of_the_three_kinds():
    for meas in (synthetic(), synthetic("cuda", 64)):
        for cid in verdicts.CLAIMS:
            assert verdicts.verdict_kind(verdicts.verdict(cid, meas)) in verdicts.VERDICTS
    with pytest.raises(ValueError, match="not a verdict"):
        verdicts.verdict_kind("holds only at large batch on GPU")
    with pytest.raises(ValueError, match="unknown claim"):
        verdicts.verdict("nope", synthetic())


def test_a_measurement_that_misses_the_rule_says_does_not_hold_here():
    meas = synthetic()
    assert verdicts.verdict("transformer_prefill_quadratic", meas) == verdicts.HOLDS   # p = 2
    assert verdicts.verdict("transformer_decode_grows", meas) == verdicts.HOLDS        # p = 1
    meas["models"]["gpt2"]["prefill_s"] = [1e-6 * x for x in N]                       # p = 1
    assert verdicts.verdict("transformer_prefill_quadratic", meas) == verdicts.DOES_NOT_HOLD
    meas["models"]["rwkv"]["decode_s"] = [1.0] * 4                                    # slower than GPT-2
    assert verdicts.verdict("rwkv_faster", meas) == verdicts.DOES_NOT_HOLD
    meas["models"]["mamba"]["state_bytes"] = [x for x in N]                           # grows with n
    assert verdicts.verdict("mamba_state_constant", meas) == verdicts.DOES_NOT_HOLD


def test_the_5x_throughput_claim_is_not_judged_by_batch_1_latency():
    meas = synthetic()                                   # GPT-2 / Mamba decode = 80x, batch 1, CPU
    v = verdicts.verdict("mamba_5x", meas)
    assert v.startswith(verdicts.NOT_MEASURED) and "throughput" in v and "GPU" in v
    assert verdicts.measured_figures(meas)["mamba_5x"][0] is None
    meas["models"]["mamba"]["decode_s"] = [0.05] * 4     # 1.6x: still not a verdict on the claim
    assert verdicts.verdict_kind(verdicts.verdict("mamba_5x", meas)) == verdicts.NOT_MEASURED
    gpu = synthetic("cuda", 64)                          # what the claim is about: it can hold ...
    assert verdicts.verdict("mamba_5x", gpu) == verdicts.HOLDS
    gpu["models"]["mamba"]["decode_s"] = [0.05] * 4      # ... or not
    assert verdicts.verdict("mamba_5x", gpu) == verdicts.DOES_NOT_HOLD


def test_jamba_vs_mixtral_is_not_judged_against_gpt2():
    meas = synthetic()                                   # GPT-2 / Jamba = 16x: irrelevant to the claim
    v = verdicts.verdict("jamba_3x", meas)
    assert v.startswith(verdicts.NOT_MEASURED) and "Mixtral" in v
    with_mixtral = copy.deepcopy(meas)
    with_mixtral["models"]["mixtral"] = {"prefill_s": [1.0] * 4, "decode_s": [2e-2] * 4, "state_bytes": [1] * 4}
    assert verdicts.verdict("jamba_3x", with_mixtral) == verdicts.HOLDS           # 20 ms / 5 ms = 4x
    with_mixtral["models"]["mixtral"]["decode_s"] = [1e-2] * 4
    assert verdicts.verdict("jamba_3x", with_mixtral) == verdicts.DOES_NOT_HOLD   # 2x


def test_the_table_states_each_rule_and_the_verdict_rule():
    table = verdicts.verdict_table(synthetic())
    for c in verdicts.CLAIMS.values():
        assert c.rule in table
    assert verdicts.VERDICT_RULE in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(verdicts.CLAIMS)
    assert all(line.count("|") == 6 for line in rows), "a rule containing '|' would break the table"


def test_active_parameters_read_top_k_of_the_experts():
    m = models.build_model("jamba", "tiny")
    cfg = m.config
    experts = sum(p.numel() for n, p in m.named_parameters() if ".experts." in n)
    total = models.n_parameters(m)
    assert cost.active_params(m) == total - experts * (cfg.num_experts - cfg.num_experts_per_tok) // cfg.num_experts
    gpt = models.build_model("gpt2", "tiny")
    assert cost.active_params(gpt) == models.n_parameters(gpt), "a dense model reads all its weights"
    assert cost.active_params(models.meta_model(cfg)) == cost.active_params(m), "shapes are enough (meta)"
    assert cost.active_params(m) * 4 == cost.active_weight_bytes(m), "the same count as the bytes read (float32)"
