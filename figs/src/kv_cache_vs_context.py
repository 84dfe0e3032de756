"""figs/kv_cache_vs_context.png: KV-cache memory of one sequence against context length for
Llama-2-7B, Mixtral-8x7B and Jamba-v0.1, computed from their published configurations.

Stands in for the reading's missing Jamba context-size figure. Per token and per attention
layer the cache keeps one key and one value vector for every KV head:

    bytes(L) = 2 (K and V) * n_attention_layers * n_kv_heads * head_dim * bytes_per_value * L

with 16-bit values (2 bytes). Mamba layers keep a fixed-size state instead, so only Jamba's
attention layers (1 in 8: 4 of 32) count. The configurations are those of archlab.llms (the
models' config.json files). The hollow markers are the 256K-token values of Lieber et al. 2024,
arXiv:2403.19887, Table 1 (Llama-2 128GB, Mixtral 32GB, Jamba 4GB), drawn to show that the
computation reproduces them. Deterministic: fixed size and dpi, no software/date metadata.

    python figs/src/kv_cache_vs_context.py [OUT_DIR]     (default figs/; or set FIGS_OUT)
"""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from archlab.llms import published_config  # noqa: E402

NAME = "kv_cache_vs_context.png"
BYTES_PER_VALUE = 2                     # bf16 / fp16
CONTEXTS = [2 ** k for k in range(10, 19)]   # 1K ... 256K tokens
TABLE1_GB_AT_256K = {"Llama-2-7B": 128, "Mixtral-8x7B": 32, "Jamba-v0.1": 4}  # Lieber et al. Table 1
ORDER = ["Llama-2-7B", "Mixtral-8x7B", "Jamba-v0.1"]
COLORS = {"Llama-2-7B": "tab:red", "Mixtral-8x7B": "tab:orange", "Jamba-v0.1": "tab:blue"}


def attention_layers(cfg):
    """Layers that keep a KV cache: all of them, except Jamba's Mamba layers (its config lists them)."""
    if hasattr(cfg, "layers_block_type"):
        return cfg.layers_block_type.count("attention")
    return cfg.num_hidden_layers


def kv_bytes_per_token(cfg):
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    return 2 * attention_layers(cfg) * cfg.num_key_value_heads * head_dim * BYTES_PER_VALUE


def out_dir():
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(os.environ.get("FIGS_OUT", Path(__file__).resolve().parent.parent))


def main():
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 10})
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for name in ORDER:
        cfg = published_config(name)
        per_token = kv_bytes_per_token(cfg)
        gib = [per_token * L / 2 ** 30 for L in CONTEXTS]
        label = (f"{name}: {attention_layers(cfg)} attention layers x {cfg.num_key_value_heads} KV heads"
                 f" = {per_token / 2 ** 10:.0f} KiB/token")
        ax.plot(CONTEXTS, gib, "o-", color=COLORS[name], ms=3.5, label=label)
        ax.plot([CONTEXTS[-1]], [TABLE1_GB_AT_256K[name]], "o", ms=11, mfc="none",
                mec=COLORS[name], mew=1.5)
        ax.annotate(f"{gib[-1]:.0f} GiB", (CONTEXTS[-1], gib[-1]), xytext=(-52, 4),
                    textcoords="offset points", color=COLORS[name])
    ax.plot([], [], "o", ms=11, mfc="none", mec="gray", label="Jamba paper, Table 1 (256K tokens)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xticks(CONTEXTS, [f"{L // 1024}K" for L in CONTEXTS])
    yticks = [2.0 ** k for k in range(-6, 8, 2)]                          # 16 MiB ... 128 GiB
    ax.set_yticks(yticks, [f"{t:g} GiB" if t >= 1 else f"{t * 1024:g} MiB" for t in yticks])
    ax.minorticks_off()
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("KV cache of one sequence (16-bit values)")
    ax.set_title("KV cache against context, from the published configurations")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8.5, frameon=False)
    fig.tight_layout()
    out = out_dir() / NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
