"""Notebook 06's explorer: what grouped-query attention (GQA) buys in KV-cache memory.

Pick a published model, the number of key/value heads per layer and a context length; the
explorer shows the KV cache of one sequence with that many KV heads against multi-head
attention (H_kv = H, every query head keeps its own keys and values) and multi-query attention
(H_kv = 1). The bytes come from the student's ``kv_bytes_per_token(config, bytes_per_value)``.
"""

import copy

import ipywidgets as W
import matplotlib.pyplot as plt

KV_HEAD_CHOICES = [1, 2, 4, 8, 16, 32, 64]
CONTEXTS = [("1K", 1024), ("8K", 8192), ("32K", 32768), ("128K", 131072), ("1M", 1048576)]


def kv_cache_explorer(configs, kv_bytes_fn, bytes_per_value=2):
    """Bar chart of KV-cache GiB for one sequence: chosen H_kv against MHA and MQA.

    configs: {name: transformers config}; kv_bytes_fn(config, bytes_per_value) -> int bytes per
    token. ``w.result`` is a dict with the chosen model's figures after each redraw.
    """
    if not configs:
        raise ValueError("kv_cache_explorer needs at least one config")

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
        per_token = {f"MHA (H_kv = {H})": kv_bytes_fn(with_kv_heads(cfg, H), bytes_per_value),
                     f"chosen (H_kv = {n_kv})": kv_bytes_fn(with_kv_heads(cfg, n_kv), bytes_per_value),
                     "MQA (H_kv = 1)": kv_bytes_fn(with_kv_heads(cfg, 1), bytes_per_value)}
        gib = {k: v * context / 2**30 for k, v in per_token.items()}
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        bars = ax.bar(list(gib), list(gib.values()), color=["tab:red", "tab:blue", "tab:gray"])
        ax.bar_label(bars, fmt="%.1f GiB")
        ax.set_ylabel("KV cache of one sequence (GiB)")
        ax.set_title(f"{model}: {context:,} tokens, {bytes_per_value}-byte values")
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
