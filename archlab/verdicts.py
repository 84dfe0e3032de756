"""Verdicts on the reading's §5 table: does each claim hold in a set of measurements?

Notebook 05 prints the table from its own measurements, ``bench/run.py`` from the full-size
benchmark; both call :func:`verdict`, so a verdict printed in the notebook and one written by
the benchmark come from the same code.

Glossary
--------
measurements
    ``{"contexts": [n...], "batch": B, "device": "cpu"|"cuda", "models": {family:
    {"prefill_s": [...], "decode_s": [...], "state_bytes": [...]}}}``, each list aligned with
    ``contexts`` (families as in :mod:`archlab.equal_size`).
exponent
    ``p`` in cost ≈ c·nᵖ, the slope of log(cost) against log(n): :func:`archlab.fits.fit_power_law`.
verdict
    For each row of the reading's table: "holds", "does not hold here" or "not measured here
    (needs X)" (:data:`VERDICT_RULE`); a claim is judged only by the quantity it is about.
"""

from dataclasses import dataclass

from archlab import fits

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold here"
NOT_MEASURED = "not measured here"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_MEASURED)

VERDICT_RULE = (
    "A verdict judges a claim only by a measurement of the same quantity: **holds** when the "
    "measurement meets the rule, **does not hold here** when it does not (at these sizes, this "
    "batch, on this machine), **not measured here (needs X)** when what ran here is not what the "
    "claim is about. No verdict speaks for hardware, batch sizes or models that did not run.")


@dataclass(frozen=True)
class Claim:
    """One row of the reading's §5 table and how a measurement judges it."""

    arch: str          # the table's row
    says: str          # the reading's words
    what: str          # the quantity measured for it
    rule: str          # when it holds, in words (thresholds come from the theory, not the data)
    needs: str = ""    # what a measurement must have to speak to the claim ("" = any run of ours)


CLAIMS = {
    "kv_linear": Claim("Transformer", "KV cache memory O(n)", "exponent p of GPT-2's KV-cache bytes vs n",
                       "abs(p − 1) ≤ 0.1"),
    "transformer_decode_grows": Claim("Transformer", "O(n) per new token",
                                      "exponent p of GPT-2's decode time/token vs n",
                                      "p ≥ 0.3 (the attention reads grow with n; weights read every step do not)"),
    "transformer_prefill_quadratic": Claim("Transformer", "O(n²) over the whole sequence",
                                           "exponent p of GPT-2's prefill time vs n", "p ≥ 1.5"),
    "mamba_state_constant": Claim("Mamba", "memory O(1) per token", "exponent p of Mamba's state bytes vs n",
                                  "abs(p) < 0.05"),
    "mamba_linear": Claim("Mamba", "O(n) linear time", "exponent p of Mamba's prefill time vs n", "p ≤ 1.3"),
    "mamba_5x": Claim("Mamba", "~5× faster than Transformer",
                      "decode time GPT-2 / Mamba (equal size) at the longest n", "ratio ≥ 5",
                      needs="large-batch (≥ 16) generation throughput on a GPU, the Mamba paper's §4.5 "
                            "setting; batch-1 latency is another quantity"),
    "rwkv_state_constant": Claim("RWKV", "only a hidden state, very memory efficient",
                                 "exponent p of RWKV's state bytes vs n", "abs(p) < 0.05"),
    "rwkv_faster": Claim("RWKV", "faster than Transformer", "decode time GPT-2 / RWKV (equal size) at the longest n",
                         "ratio > 1"),
    "jamba_less_kv": Claim("Jamba", "uses only part of the KV cache",
                           "Jamba / GPT-2 (equal size) cache bytes at the longest n", "ratio < 1"),
    "jamba_3x": Claim("Jamba", "~3× faster in long context (vs Mixtral)",
                      "decode time Mixtral / Jamba (matching size) at the longest n", "ratio ≥ 3",
                      needs="Mixtral at long context: a Mixtral-shaped model of matching size; the claim "
                            "is Jamba against Mixtral-8x7B at 128K tokens, Lieber et al. 2024 §3.2"),
}


def _series(meas, fam, key):
    return meas["models"][fam][key]


def _can_measure(claim, meas):
    """Whether ``meas`` holds the quantity the claim is about (see :attr:`Claim.needs`)."""
    if claim == "mamba_5x":
        return meas.get("device", "cpu") == "cuda" and meas.get("batch", 1) >= 16
    if claim == "jamba_3x":
        return "mixtral" in meas["models"]
    return True


def measured_figures(meas):
    """{claim id: (number or None, formatted text)} from a measurements dict (see :func:`verdict`).

    The number is None where the measurement does not speak to the claim; the text then says
    what was measured instead, so a reader sees it without mistaking it for the claim's quantity.
    """
    n = meas["contexts"]

    def exp_of(fam, key):
        return fits.fit_power_law(n, _series(meas, fam, key)).exponent

    def ratio(fam, over="gpt2", key="decode_s"):
        return _series(meas, over, key)[-1] / _series(meas, fam, key)[-1]

    batch = meas.get("batch", 1)
    fig = {}
    for cid, fam, key in (("kv_linear", "gpt2", "state_bytes"), ("transformer_decode_grows", "gpt2", "decode_s"),
                          ("transformer_prefill_quadratic", "gpt2", "prefill_s"),
                          ("mamba_state_constant", "mamba", "state_bytes"), ("mamba_linear", "mamba", "prefill_s"),
                          ("rwkv_state_constant", "rwkv", "state_bytes")):
        p = exp_of(fam, key)
        fig[cid] = (p, f"p = {p:.2f}")
    r = ratio("rwkv")
    fig["rwkv_faster"] = (r, f"{r:.2f}× at n={n[-1]}, batch {batch}")
    r = 1.0 / ratio("jamba", key="state_bytes")
    fig["jamba_less_kv"] = (r, f"{r:.3f} of GPT-2's at n={n[-1]}")
    r = ratio("mamba")
    if _can_measure("mamba_5x", meas):
        fig["mamba_5x"] = (r, f"{r:.2f}× at n={n[-1]}, batch {batch}")
    else:
        fig["mamba_5x"] = (None, f"{r:.2f}× at n={n[-1]} (batch-{batch} latency on {meas.get('device', 'cpu')}, "
                                 "not throughput)")
    if _can_measure("jamba_3x", meas):
        r = ratio("jamba", over="mixtral")
        fig["jamba_3x"] = (r, f"{r:.2f}× at n={n[-1]}")
    else:
        fig["jamba_3x"] = (None, "no Mixtral-shaped model measured")
    return {cid: fig[cid] for cid in CLAIMS}


def verdict(claim, meas):
    """The verdict on one claim of the reading's table: one of :data:`VERDICTS`, the last with its needs.

    ``meas = {"contexts": [n...], "batch": B, "device": "cpu"|"cuda",
    "models": {family: {"prefill_s": [...], "decode_s": [...], "state_bytes": [...]}}}``,
    each list aligned with ``contexts``. Returns ``"holds"``, ``"does not hold here"`` or
    ``"not measured here (needs ...)"``: see :data:`VERDICT_RULE` and each :class:`Claim`'s rule.
    """
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; known: {', '.join(CLAIMS)}")
    value = measured_figures(meas)[claim][0]
    if value is None:
        return f"{NOT_MEASURED} (needs {CLAIMS[claim].needs})"
    holds = {
        "kv_linear": abs(value - 1) <= 0.1,
        "mamba_state_constant": abs(value) < 0.05,
        "rwkv_state_constant": abs(value) < 0.05,
        "transformer_decode_grows": value >= 0.3,
        "transformer_prefill_quadratic": value >= 1.5,
        "mamba_linear": value <= 1.3,
        "mamba_5x": value >= 5,
        "rwkv_faster": value > 1,
        "jamba_less_kv": value < 1,
        "jamba_3x": value >= 3,
    }[claim]
    return HOLDS if holds else DOES_NOT_HOLD


def verdict_kind(text):
    """The kind of a verdict string: one of :data:`VERDICTS` (drops a 'not measured' verdict's needs)."""
    kind = NOT_MEASURED if text.startswith(NOT_MEASURED) else text
    if kind not in VERDICTS:
        raise ValueError(f"not a verdict: {text!r}")
    return kind


def verdict_table(meas):
    """The reading's table as markdown: claim | measured | rule | verdict, then the verdict rule."""
    figs = measured_figures(meas)
    lines = ["| architecture | the reading says | measured here | holds when | verdict |",
             "| --- | --- | --- | --- | --- |"]
    for cid, c in CLAIMS.items():
        lines.append(f"| {c.arch} | {c.says} | {c.what}: {figs[cid][1]} | {c.rule} | {verdict(cid, meas)} |")
    return "\n".join(lines) + "\n\n" + VERDICT_RULE
