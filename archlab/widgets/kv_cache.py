"""Notebook 06's explorer: what grouped-query attention (GQA) buys in KV-cache memory.

Pick a published model, the number of key/value heads per layer and a context length; the
explorer shows the KV cache of one sequence with that many KV heads against multi-head
attention (H_kv = H, every query head keeps its own keys and values) and multi-query attention
(H_kv = 1).

The bytes are measured, not computed from a formula: for every choice of H_kv the explorer
asks ``bytes_per_token(config)``, by default transformers' own cache of the model on the meta
device after one token (:func:`archlab.models.cache_bytes`, 16-bit values), remembered per
configuration because each measurement takes a second or two.
"""

import copy

import ipywidgets as W
import matplotlib.pyplot as plt

KV_HEAD_CHOICES = [1, 2, 4, 8, 16, 32, 64]
CONTEXTS = [("1K", 1024), ("8K", 8192), ("32K", 32768), ("128K", 131072), ("1M", 1048576)]


_MEASURED = {}


def measured_bytes_per_token(config):
    """Bytes of cache one token adds to ``config``'s model (16-bit), measured on the meta device.

    A Transformer's cache has no fixed part, so the cache after one token is the cost per token."""
    from archlab.models import cache_bytes

    key = (type(config).__name__, config.to_json_string())
    if key not in _MEASURED:
        _MEASURED[key] = cache_bytes(config, 1)
    return _MEASURED[key]


def kv_cache_explorer(configs, bytes_per_token=None):
    """Bar chart of KV-cache GiB for one sequence: chosen H_kv against MHA and MQA.

    configs: {name: transformers config}; bytes_per_token(config) -> int bytes one token adds to
    the cache (16-bit values); default :func:`measured_bytes_per_token`. ``w.result`` is a dict
    with the chosen model's figures after each redraw.
    """
    if not configs:
        raise ValueError("kv_cache_explorer needs at least one config")
    bytes_per_token = bytes_per_token or measured_bytes_per_token

    def with_kv_heads(cfg, n_kv):
        cfg = copy.deepcopy(cfg)
        cfg.num_key_value_heads = n_kv
        return cfg

    def draw(model, kv_heads, context):
        cfg = configs[model]
        H = cfg.num_attention_heads
        n_kv = min(kv_heads, H)
        while H % n_kv:          # H_kv must divide H (each KV head serves H / H_kv query heads)
            n_kv -= 1
        per_token = {f"MHA (H_kv = {H})": bytes_per_token(with_kv_heads(cfg, H)),
                     f"chosen (H_kv = {n_kv})": bytes_per_token(with_kv_heads(cfg, n_kv)),
                     "MQA (H_kv = 1)": bytes_per_token(with_kv_heads(cfg, 1))}
        gib = {k: v * context / 2**30 for k, v in per_token.items()}
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        bars = ax.bar(list(gib), list(gib.values()), color=["tab:red", "tab:blue", "tab:gray"])
        ax.bar_label(bars, fmt="%.1f GiB")
        ax.set_ylabel("KV cache of one sequence (GiB)")
        ax.set_title(f"{model}: {context:,} tokens, 16-bit values (measured)")
        ax.margins(y=0.2)
        fig.tight_layout()
        plt.show()
        chosen = per_token[f"chosen (H_kv = {n_kv})"]
        mha = per_token[f"MHA (H_kv = {H})"]
        if n_kv != kv_heads:
            print(f"{kv_heads} KV heads is not possible with {H} query heads: using {n_kv} "
                  f"(H_kv must divide H).")
        print(f"{model}: {chosen:,} bytes per token with {n_kv} KV heads, {mha:,} with {H} "
              f"(MHA): GQA divides the cache by {mha / chosen:g}.")
        return dict(model=model, kv_heads=n_kv, context=context, bytes_per_token=chosen,
                    cache_bytes=chosen * context, mha_cache_bytes=mha * context, saving=mha / chosen)

    names = list(configs)
    first = configs[names[0]]
    start = first.num_key_value_heads if first.num_key_value_heads in KV_HEAD_CHOICES else 1
    return W.interactive(
        draw,
        model=W.Dropdown(options=names, value=names[0], description="model"),
        kv_heads=W.SelectionSlider(options=KV_HEAD_CHOICES, value=start, description="KV heads"),
        context=W.SelectionSlider(options=CONTEXTS, value=8192, description="context"),
    )
