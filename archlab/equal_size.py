"""The four families side by side: models of about equal size and one cache-aware forward.

Notebook 05 measures the reading's §5 table with these models, notebook 07 runs its §7 lab
fairly with them, and ``bench/run.py`` repeats both at full size, so the three measure the same
models the same way.

The timing loops themselves (``measure_prefill``, ``measure_decode``) and the cache byte count
(``state_bytes``) are exercises of notebook 05 and live there, not here; the benchmark keeps its
own copies in ``bench/run.py``.

Glossary
--------
family
    "gpt2" (Transformer), "mamba", "rwkv" (RWKV-4) or "jamba" (hybrid + MoE), as
    :mod:`archlab.models` builds them.
equal size
    Layer counts chosen so the four models have about the same number of parameters
    (:data:`EQUAL_SIZE`): a comparison of architectures, not of model sizes.
prefill
    One forward over the whole prompt of ``n`` tokens (context length ``n``); it fills the
    cache. A Transformer pays O(n²) in attention here, Mamba/RWKV O(n).
decode
    One forward over ONE new token that reads the cache: O(n) for a Transformer (it attends to
    all n cached keys), O(1) for Mamba and RWKV (a fixed-size state).
cache / state
    What decode carries from step to step: the KV cache (Transformer, Jamba's attention
    layers), conv + SSM states (Mamba), five (B, D, n_layer) tensors (RWKV-4).
"""

import torch

from archlab import models

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
        raise ValueError(f"equal_size handles {FAMILIES}; got a {kind!r} model")
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
