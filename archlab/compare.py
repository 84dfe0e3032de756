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
    ``p`` in cost ≈ c·nᵖ, the slope of log(cost) against log(n) (a least-squares fit).
verdict
    One of :data:`VERDICTS` for each row of the reading's table, from the measurements.
roofline (decode)
    At batch 1 a decode step reads every weight and the whole cache once; it cannot be faster
    than bytes_read / memory_bandwidth.
"""

import math

import numpy as np
import torch

from archlab import models
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


def build_equal_size(size="tiny", max_context=1024, seed=0, device="cpu", families=FAMILIES):
    """{family: random-weight model} of about equal parameter count, able to read max_context tokens."""
    out = {}
    for fam in families:
        overrides = dict(EQUAL_SIZE[size][fam])
        if fam in _MAX_CONTEXT_KEY:
            overrides[_MAX_CONTEXT_KEY[fam]] = max(max_context + 16, models.CONFIGS[fam][size].get(
                _MAX_CONTEXT_KEY[fam], 0))
        out[fam] = models.build_model(fam, size, seed=seed, device=device, **overrides)
    return out


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


def fit_exponent(lengths, costs):
    """p in cost ≈ c·nᵖ: least-squares slope of log(cost) on log(n)."""
    x = np.log(np.asarray(lengths, dtype=float))
    y = np.log(np.maximum(np.asarray(costs, dtype=float), 1e-30))
    if len(x) < 2:
        raise ValueError("need at least two points to fit an exponent")
    return float(np.polyfit(x, y, 1)[0])


def fit_power(lengths, costs):
    """(c, p) with cost ≈ c·nᵖ, for extrapolating a measured curve."""
    p = fit_exponent(lengths, costs)
    c = math.exp(float(np.mean(np.log(np.maximum(costs, 1e-30)) - p * np.log(lengths))))
    return c, p


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


# ---------------------------------------------------------------------------------------------
# Verdicts on the reading's §5 table
# ---------------------------------------------------------------------------------------------
HOLDS = "holds"
GPU_BATCH = "holds only at large batch on GPU"
NOT_AT_SIZE = "does not hold at this size"
VERDICTS = (HOLDS, GPU_BATCH, NOT_AT_SIZE)

# claim id -> (row of the table, the reading's words, what we measure)
CLAIMS = {
    "kv_linear": ("Transformer", "KV cache memory O(n)", "exponent of KV-cache bytes vs n"),
    "transformer_decode_grows": ("Transformer", "O(n) per new token", "exponent of decode time/token vs n"),
    "transformer_prefill_quadratic": ("Transformer", "O(n²) over the whole sequence", "exponent of prefill time vs n"),
    "mamba_state_constant": ("Mamba", "memory O(1) per token", "exponent of state bytes vs n"),
    "mamba_linear": ("Mamba", "O(n) linear time", "exponent of prefill time vs n"),
    "mamba_5x": ("Mamba", "~5× faster than Transformer", "decode time GPT-2 / Mamba at the longest n"),
    "rwkv_state_constant": ("RWKV", "only a hidden state, very memory efficient", "exponent of state bytes vs n"),
    "rwkv_faster": ("RWKV", "faster than Transformer", "decode time GPT-2 / RWKV at the longest n"),
    "jamba_less_kv": ("Jamba", "uses only part of the KV cache", "Jamba / GPT-2 cache bytes at the longest n"),
    "jamba_3x": ("Jamba", "~3× faster in long context (vs Mixtral)", "decode time GPT-2 / Jamba at the longest n"),
}


def _series(meas, fam, key):
    return meas["models"][fam][key]


def measured_figures(meas):
    """{claim id: (number, formatted text)} from a measurements dict (see :func:`verdicts`)."""
    n = meas["contexts"]
    fig = {}

    def exp_of(fam, key):
        return fit_exponent(n, _series(meas, fam, key))

    def ratio(fam, key="decode_s"):
        return _series(meas, "gpt2", key)[-1] / _series(meas, fam, key)[-1]

    fig["kv_linear"] = exp_of("gpt2", "state_bytes")
    fig["transformer_decode_grows"] = exp_of("gpt2", "decode_s")
    fig["transformer_prefill_quadratic"] = exp_of("gpt2", "prefill_s")
    fig["mamba_state_constant"] = exp_of("mamba", "state_bytes")
    fig["mamba_linear"] = exp_of("mamba", "prefill_s")
    fig["mamba_5x"] = ratio("mamba")
    fig["rwkv_state_constant"] = exp_of("rwkv", "state_bytes")
    fig["rwkv_faster"] = ratio("rwkv")
    fig["jamba_less_kv"] = 1.0 / ratio("jamba", "state_bytes")
    fig["jamba_3x"] = ratio("jamba")
    text = {}
    for cid, value in fig.items():
        if cid in ("mamba_5x", "rwkv_faster", "jamba_3x"):
            text[cid] = f"{value:.2f}× at n={n[-1]}"
        elif cid == "jamba_less_kv":
            text[cid] = f"{value:.3f} of GPT-2's at n={n[-1]}"
        else:
            text[cid] = f"p = {value:.2f}"
    return {cid: (fig[cid], text[cid]) for cid in fig}


def verdict(claim, meas):
    """The verdict on one claim of the reading's table, from a measurements dict.

    ``meas = {"contexts": [n...], "batch": B, "device": "cpu"|"cuda",
    "models": {family: {"prefill_s": [...], "decode_s": [...], "state_bytes": [...]}}}``,
    each list aligned with ``contexts``.

    Rules (thresholds chosen from the theory, not from the data):
    * memory exponents: O(n) holds when p is within 0.1 of 1, O(1) when |p| < 0.05;
    * decode per token grows: p ≥ 0.3 (linear in n once attention dominates the weights);
    * prefill O(n²): p ≥ 1.5; O(n): p ≤ 1.3;
    * speed-ups: the reading's 5× (Mamba paper §4.5) is generation THROUGHPUT at large batch
      on an A100: at batch 1 or on a CPU a smaller ratio does not refute it, so it gets
      GPU_BATCH; the 3× (Jamba vs Mixtral at 128K tokens) needs very long contexts, so
      a smaller ratio here means NOT_AT_SIZE; "faster" means a ratio above 1.
    """
    if claim not in CLAIMS:
        raise ValueError(f"unknown claim {claim!r}; known: {', '.join(CLAIMS)}")
    value = measured_figures(meas)[claim][0]
    if claim == "kv_linear":
        return HOLDS if abs(value - 1) <= 0.1 else NOT_AT_SIZE
    if claim in ("mamba_state_constant", "rwkv_state_constant"):
        return HOLDS if abs(value) < 0.05 else NOT_AT_SIZE
    if claim == "transformer_decode_grows":
        return HOLDS if value >= 0.3 else NOT_AT_SIZE
    if claim == "transformer_prefill_quadratic":
        return HOLDS if value >= 1.5 else NOT_AT_SIZE
    if claim == "mamba_linear":
        return HOLDS if value <= 1.3 else NOT_AT_SIZE
    if claim == "mamba_5x":
        if value >= 5:
            return HOLDS
        small = meas.get("batch", 1) < 16 or meas.get("device", "cpu") != "cuda"
        return GPU_BATCH if small else NOT_AT_SIZE
    if claim == "rwkv_faster":
        return HOLDS if value > 1 else NOT_AT_SIZE
    if claim == "jamba_less_kv":
        return HOLDS if value < 1 else NOT_AT_SIZE
    if claim == "jamba_3x":
        return HOLDS if value >= 3 else NOT_AT_SIZE
    raise AssertionError(claim)


def verdict_table(meas):
    """The reading's table as markdown rows: claim | measured | verdict."""
    figs = measured_figures(meas)
    lines = ["| architecture | the reading says | measured here | verdict |", "| --- | --- | --- | --- |"]
    for cid, (arch, says, what) in CLAIMS.items():
        lines.append(f"| {arch} | {says} | {what}: {figs[cid][1]} | {verdict(cid, meas)} |")
    return "\n".join(lines)
