"""Statements the notebooks once got wrong stay corrected, and claims about speed stay tied to data.

Per notebook source (`solutions/<id>/<id>.py`, prose with its comment marks dropped and whitespace
collapsed, so a line break cannot hide a sentence): the old wrong sentence is absent and a short
distinctive piece of its correction is present where it arises. Where the prose cites the
course's own benchmark (bench/results/*.json) the claim is checked against the committed file,
so rerunning `make bench` with a different outcome fails here instead of leaving a false sentence.
"""

import json
import re

import pytest

import nbtools
from autograder.paths import present_assignments

ROOT = nbtools.ROOT

# (notebook, wrong sentences that must be gone, corrected facts that must be present)
STATEMENTS = {
    "01_self_attention": (
        ["the softmax's passes over memory) do not grow with $L^2$",
         "q3_attention_time_exponent"],                                  # Q3's exponents were written above it
        ["the mask and the softmax, which read and write the whole `(B, H, L, L)` score tensor, "
         "$O(L^2)$ memory traffic",
         "q3_generate_cached_exponent", "q3_generate_uncached_exponent"]),
    "02_mamba": (
        ["for $\\Delta |A| > 2$ it even flips sign",
         "the readable twin every faster scan below must equal",
         "Arithmetic is the same few multiply-adds and one `exp` per state entry for all of them",
         "the selective model approaches perfect copying while the LTI model stays far below"],
        ["it turns negative once $\\Delta |A| > 1$",
         "once $\\Delta |A| > 2$ its magnitude exceeds 1",
         "on a CPU the parallel scan of §4 is slower than this loop",
         "$O(BLDN \\log L)$ work against the loop's $O(BLDN)$",
         "The Hillis–Steele scan is not *work-efficient*",
         "(Gu & Dao 2023, §3.3.2)",
         "in the course's CPU benchmark the parallel scan is the slowest of the four scans timed",
         "Table 1 (selective copying), S4 (no gate, an LTI layer) reaches 18.3 % accuracy",
         "That is the paper's measurement, not one made here"]),
    "03_rwkv": (
        ["Table 1 of the RWKV paper (Peng et al. 2023) lists RWKV at",
         "(paper §3.1.1)", "(paper §3.1.2)", "paper eq. 14", "Peng et al. 2023, Table 1)",
         "q2_floats_per_layer", "q2_state_exponent"],                    # Q2's values were written above it
        ["arXiv:2305.13048v2",
         "The paper describes training in its §3.2 (*Transformer-like Training*)",
         "compares *inference* complexity, as its caption says",
         "RWKV-4 time mixing (paper §3.1: eqs. 11-13, 16, 17)",
         "RWKV-4 channel mixing (paper §3.1: eqs. 14, 15, 18)",
         "q2_crossover_tokens"]),
    "04_jamba_moe": (
        ["q3_max_context_tokens in (262144, 256000)"],
        ["**The reading's diagram has the order wrong.**",
         "[Mamba + MoE] → **[Attention + MLP]** → [Mamba + MoE]",
         "assert q3_max_context_tokens == 262144",
         "reads '256K' as thousands"]),
    "05_comparison": (
        ["the Transformer's cache and decode cost grow with n, the recurrent ones do not"],
        ["The decode-time half does not, at these sizes",
         "the verdict on \"O(n) per new token\" is \"does not hold here\""]),
    "06_open_llms": (
        ["all three are the same decoder-only Transformer with four changes to GPT-2's block"],
        ["Mixtral replaces each MLP with a sparse mixture of 8 expert MLPs and a router",
         "Qwen2 keeps biases on the query, key and value projections",
         "about 8× the data",
         "is the training *compute*",
         "trained on up to 16K H100 GPUs (§3.3.1)",
         "The 405B model came with Llama 3.1"]),
}


def prose(assignment):
    """The source with comment marks dropped and whitespace collapsed."""
    src = (ROOT / "solutions" / assignment / f"{assignment}.py").read_text()
    return " ".join(" ".join(re.sub(r"^#( |$)", "", line) for line in src.splitlines()).split())


@pytest.mark.parametrize("assignment", sorted(STATEMENTS))
def test_wrong_statements_stay_corrected(assignment):
    text = prose(assignment)
    gone, present = STATEMENTS[assignment]
    back = [w for w in gone if " ".join(w.split()) in text]
    assert not back, f"{assignment}: a corrected statement is back: {back}"
    missing = [f for f in present if " ".join(f.split()) not in text]
    assert not missing, f"{assignment}: a correction is missing: {missing}"


def _cpu_bench(pattern):
    files = [p for p in sorted((ROOT / "bench" / "results").glob(pattern)) if "-quick" not in p.name]
    runs = [(p.name, json.loads(p.read_text())) for p in files]
    runs = [(n, r) for n, r in runs if r.get("device") == "cpu"]
    if not runs:
        pytest.skip(f"no CPU results bench/results/{pattern}")
    return runs


def test_parallel_scan_is_the_slowest_in_the_cpu_benchmark():
    """02 §4 says so, from bench/results/selective_scan-*.json: the parallel scan is the slowest of the
    four scans at every length, and slower than the sequential loop."""
    for name, res in _cpu_bench("selective_scan-*.json"):
        for r in res["scans"]:
            times = {k: r[k]["median_s"] for k in ("reference", "sequential", "parallel", "fused")}
            assert max(times, key=times.get) == "parallel", f"{name}, L={r['L']}: {times}"


def test_gpt2_decode_growth_does_not_hold_in_the_cpu_benchmark():
    """05's closing says the decode-time half of the theory does not show at ~100M parameters on a CPU."""
    from archlab import verdicts
    for name, res in _cpu_bench("vm*.json"):
        assert verdicts.verdict("transformer_decode_grows", res) == verdicts.DOES_NOT_HOLD, name
        assert verdicts.verdict("kv_linear", res) == verdicts.HOLDS, name


def _points(assignment):
    return {nbtools.nbgrader_meta(c)["grade_id"]: nbtools.nbgrader_meta(c)["points"]
            for c in nbtools.solution_nb(assignment).cells if nbtools.nbgrader_meta(c).get("points") is not None}


def test_a_stretch_exercise_is_worth_less_than_the_core_one():
    """CONTRIBUTING's points scale: 02's stretch (the fused kernel) counts less than the parallel scan."""
    pts = _points("02_mamba")
    assert pts["test_selective_scan_fused"] < pts["test_selective_scan_parallel"], pts


def _estimate_minutes(assignment):
    """The minutes a notebook's first cell says it takes (the stretch exercise not counted)."""
    first = next(c for c in nbtools.solution_nb(assignment).cells if c.cell_type == "markdown").source
    m = re.search(r"\*\*Estimated time:\*\* (\d+) (minutes|hours?)", first)
    assert m, f"{assignment}: the first cell does not say how long the notebook takes (**Estimated time:** N minutes)"
    return int(m.group(1)) * (60 if m.group(2).startswith("hour") else 1)


def test_each_notebook_says_how_long_it_takes_and_the_course_is_about_ten_hours():
    """Every first cell states its time; README's table lists the same, and its total is their sum."""
    readme = (ROOT / "README.md").read_text()
    total = 0
    for a in present_assignments():
        minutes = _estimate_minutes(a)
        total += minutes
        assert re.search(rf"\| `{a}` \|[^\n]*\| {minutes} min \|", readme), f"README's table lacks {a}'s {minutes} min"
    assert 9 * 60 <= total <= 10.5 * 60, f"the course takes {total} minutes: about 10 hours is the design"
    assert f"({total} minutes" in readme, f"README's total is not the sum of the estimates ({total} minutes)"
