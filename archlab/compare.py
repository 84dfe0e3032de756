"""Comparing architectures by measurement: equal-size models, caches, fits and verdicts.

Notebook 05 measures the reading's §5 table, notebook 07 runs its §7 lab fairly, and
``bench/run.py`` repeats both at full size. All three use this module, so a verdict printed
in the notebook and one written by the benchmark come from the same code.

The timing loops themselves (``measure_prefill``, ``measure_decode``) and the cache byte count
(``state_bytes``) are exercises of notebook 05 and live there, not here; the benchmark keeps its
own copies in ``bench/run.py``.

Glossary
--------
prefill
    One forward over the whole prompt of ``n`` tokens (context length ``n``); it fills the
    cache. A Transformer pays O(n²) in attention here, Mamba/RWKV O(n).
decode
    One forward over ONE new token that reads the cache: O(n) for a Transformer (it attends to
    all n cached keys), O(1) for Mamba and RWKV (a fixed-size state).
cache / state
    What decode carries from step to step: the KV cache (Transformer, Jamba's attention
    layers), conv + SSM states (Mamba), five (B, D, n_layer) tensors (RWKV-4).
exponent
    ``p`` in cost ≈ c·nᵖ, the slope of log(cost) against log(n): :func:`archlab.fits.fit_power_law`.
verdict
    For each row of the reading's table: "holds", "does not hold here" or "not measured here
    (needs X)" (:data:`VERDICT_RULE`); a claim is judged only by the quantity it is about.
total / active parameters
    All weights of a model, and those one decode step reads (a mixture of experts reads top-k
    of its E experts): :func:`archlab.models.count_params`, :func:`active_params`.
roofline (decode)
    At batch 1 a decode step reads every weight and the whole cache once; it cannot be faster
    than bytes_read / memory_bandwidth.
"""

from dataclasses import dataclass

import torch

from archlab import fits, models
from archlab.measure import tensor_bytes, time_fn

FAMILIES = ("gpt2", "mamba", "rwkv", "jamba")
LABELS = {"gpt2": "Transformer (GPT-2)", "mamba": "Mamba", "rwkv": "RWKV-4", "jamba": "Jamba (hybrid + MoE)"}

# Layer counts chosen so the four models have about the same number of parameters at each
# size (a Mamba layer has ~6·D² weights against ~12·D² for a Transformer layer, so Mamba gets
# twice the layers, as Mamba-130m has 24 layers against GPT-2 small's 12).
EQUAL_SIZE = {
    "tiny": {"gpt2": dict(n_layer=4), "mamba": dict(num_hidden_layers=8), "rwkv": dict(num_hidden_layers=4),
             "jamba": dict(num_hidden_layers=4)},
    "base": {"gpt2": dict(), "mamba": dict(), "rwkv": dict(), "jamba": dict()},
}

# The keyword that sets each family's maximum context (GPT-2 has learned position embeddings:
# raising n_positions adds rows to that table; random weights either way).
_MAX_CONTEXT_KEY = {"gpt2": "n_positions", "rwkv": "context_length", "jamba": "max_position_embeddings"}


def equal_size_overrides(family, size="tiny", max_context=1024):
    """The config overrides :func:`build_equal_size` gives one family: layers, and a long enough context."""
    overrides = dict(EQUAL_SIZE[size][family])
    if family in _MAX_CONTEXT_KEY:
        overrides[_MAX_CONTEXT_KEY[family]] = max(max_context + 16, models.CONFIGS[family][size].get(
            _MAX_CONTEXT_KEY[family], 0))
    return overrides


def build_equal_size(size="tiny", max_context=1024, seed=0, device="cpu", families=FAMILIES):
    """{family: random-weight model} of about equal parameter count, able to read max_context tokens."""
    return {fam: models.build_model(fam, size, seed=seed, device=device, **equal_size_overrides(fam, size, max_context))
            for fam in families}


def family(model):
    """'gpt2' / 'mamba' / 'rwkv' / 'jamba' from the model's config."""
    kind = model.config.model_type
    if kind not in FAMILIES:
        raise ValueError(f"compare handles {FAMILIES}; got a {kind!r} model")
    return kind


def cache_of(output):
    """The object a forward returned for the next step: KV cache, Mamba cache or RWKV state."""
    for name in ("past_key_values", "cache_params", "state"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise ValueError("this output carries no cache: was the forward called with use_cache=True?")


@torch.no_grad()
def forward(model, input_ids, cache=None):
    """One forward with the cache on: ``input_ids (B, T)`` -> ``(logits (B, T, V), new cache)``.

    ``cache=None`` starts from an empty cache (a prefill); otherwise ``input_ids`` are the next
    tokens after what the cache already holds (a decode step when T = 1). The four families
    name their cache argument differently; this hides that.
    """
    fam = family(model)
    kwargs = dict(use_cache=True)
    if cache is not None:
        if fam in ("gpt2", "jamba"):
            kwargs["past_key_values"] = cache
        elif fam == "mamba":
            past = getattr(cache, "archlab_seen_tokens", 1)  # a Mamba cache cannot say its length
            kwargs["cache_params"] = cache
            # Mamba's decode path needs the position of the new token(s)
            kwargs["cache_position"] = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)
        else:
            kwargs["state"] = cache
    out = model(input_ids, **kwargs)
    new_cache = cache_of(out)
    if fam == "mamba":
        before = getattr(cache, "archlab_seen_tokens", 0) if cache is not None else 0
        new_cache.archlab_seen_tokens = before + input_ids.shape[1]
    return out.logits, new_cache


def random_ids(model, batch, length, seed=0, device="cpu"):
    """``(batch, length)`` token ids drawn uniformly from the vocabulary (seeded)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, model.config.vocab_size, (batch, length), generator=g)
    return ids.to(device)


def predicted_state_bytes(config, context_len, batch=1, bytes_per_value=4):
    """Cache/state bytes from the configuration alone (what ``state_bytes`` should measure).

    GPT-2:  2 (K and V) · layers · B · n · D
    Mamba:  layers · B · d_inner · (d_conv + N)          (conv window + SSM state, no n!)
    RWKV-4: 5 · layers · B · D                           (the five per-layer state vectors)
    Jamba:  attention layers' K, V with GQA  +  Mamba layers' conv and SSM states
    """
    kind = config.model_type
    n, B = context_len, batch
    if kind == "gpt2":
        values = 2 * config.n_layer * B * n * config.n_embd
    elif kind == "mamba":
        values = config.num_hidden_layers * B * config.intermediate_size * (config.conv_kernel + config.state_size)
    elif kind == "rwkv":
        values = 5 * config.num_hidden_layers * B * config.hidden_size
    elif kind == "jamba":
        head_dim = config.hidden_size // config.num_attention_heads
        n_attn = sum(1 for t in config.layers_block_type if t == "attention")
        n_mamba = config.num_hidden_layers - n_attn
        d_inner = config.mamba_expand * config.hidden_size
        values = 2 * n_attn * B * n * config.num_key_value_heads * head_dim
        values += n_mamba * B * d_inner * (config.mamba_d_conv + config.mamba_d_state)
    else:
        raise ValueError(f"no formula for {kind!r}")
    return int(values * bytes_per_value)


def weight_bytes(model):
    """Bytes of all parameters (a tied weight counted once)."""
    return tensor_bytes(list(model.parameters()))


def active_weight_bytes(model):
    """Bytes a batch-1 decode step actually reads: MoE layers read only top-k of E experts."""
    total = weight_bytes(model)
    cfg = model.config
    E, k = getattr(cfg, "num_experts", 0) or 0, getattr(cfg, "num_experts_per_tok", 0) or 0
    if E and k and E > k:
        expert = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if ".experts." in n)
        total -= expert * (E - k) // E
    return total


def memory_bandwidth(device="cpu", n_bytes=256 * 2**20, repeat=5):
    """Measured copy bandwidth in bytes/s: the median time of ``dst.copy_(src)`` (reads + writes 2·n_bytes)."""
    device = torch.device(device)
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), warmup=1, repeat=repeat, device=device)  # warm-up: first touch
    return 2 * n_bytes / t.median


def active_params(model):
    """Parameters a batch-1 decode step reads: all of them, less the (E - k)/E unused experts' share.

    Counts elements, not bytes, so it works on a model built on the meta device (shapes only).
    """
    total = models.count_params(model)
    cfg = model.config
    E, k = getattr(cfg, "num_experts", 0) or 0, getattr(cfg, "num_experts_per_tok", 0) or 0
    if E and k and E > k:
        expert = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        total -= expert * (E - k) // E
    return total


# ---------------------------------------------------------------------------------------------
# Verdicts on the reading's §5 table
# ---------------------------------------------------------------------------------------------
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
    "transformer_decode_grows": Claim("Transformer", "O(n) per new token", "exponent p of GPT-2's decode time/token vs n",
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
