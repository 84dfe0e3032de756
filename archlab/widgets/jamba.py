"""Notebook 04's explorer: a hybrid layer schedule drawn as a diagram, with its KV-cache size.

Pick the number of layers, the attention period and offset, the expert (MoE) period and
offset, and a context length. The explorer draws one box per layer (mixer on top, MLP below)
and reports the KV cache of one sequence at that context, with Jamba-v0.1's attention widths
(8 KV heads of width 128, 16-bit values), against the same stack with attention in every layer.

Glossary: a layer i mixes with attention when i % attn_period == attn_offset, else with Mamba;
its MLP is a mixture of experts (MoE) when i % expert_period == expert_offset, else dense.
"""

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.patches import Patch, Rectangle

COLORS = {"attention": "#d95f02", "mamba": "#1b9e77", "moe": "#7570b3", "mlp": "#bdbdbd"}
CONTEXTS = [("4K", 4096), ("32K", 32768), ("128K", 131072), ("256K", 262144), ("1M", 1048576)]


def hf_schedule(n_layers, attn_period, attn_offset, expert_period, expert_offset):
    """The layer types the Hugging Face JambaConfig gives (the reference, not the exercise)."""
    from transformers import JambaConfig

    cfg = JambaConfig(num_hidden_layers=n_layers, attn_layer_period=attn_period,
                      attn_layer_offset=attn_offset, expert_layer_period=expert_period,
                      expert_layer_offset=expert_offset)
    return [(mixer, "moe" if n > 1 else "mlp") for mixer, n in zip(cfg.layers_block_type, cfg.layers_num_experts)]


def draw_schedule(schedule, ax, per_row=16, title=""):
    """Draw [(mixer, ffn)] as boxes: one column per layer, mixer on top, MLP below."""
    n = len(schedule)
    rows = max(1, -(-n // per_row))
    for i, (mixer, ffn) in enumerate(schedule):
        r, c = divmod(i, per_row)
        y0 = (rows - 1 - r) * 3.0
        ax.add_patch(Rectangle((c, y0 + 1.0), 0.9, 0.9, color=COLORS[mixer]))
        ax.add_patch(Rectangle((c, y0), 0.9, 0.9, color=COLORS[ffn]))
        ax.text(c + 0.45, y0 + 2.05, str(i), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.2, min(n, per_row) + 0.1)
    ax.set_ylim(-0.3, rows * 3.0 - 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    handles = [Patch(color=COLORS[k], label=label) for k, label in
               [("attention", "attention"), ("mamba", "Mamba"), ("moe", "MoE MLP"), ("mlp", "dense MLP")]]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def kv_bytes(n_attention_layers, seq_len, n_kv_heads=8, head_dim=128, bytes_per_value=2):
    """2 (K, V) * attention layers * H_kv * d * L * bytes, one sequence."""
    return 2 * n_attention_layers * n_kv_heads * head_dim * seq_len * bytes_per_value


def jamba_explorer(schedule_fn=None, n_kv_heads=8, head_dim=128, bytes_per_value=2):
    """Layer diagram + KV-cache size under sliders. schedule_fn(n_layers, attn_period, attn_offset,
    expert_period, expert_offset) -> [(mixer, ffn)] (the student's); default: the HF config's rules.

    ``w.result`` is a dict: schedule, attention_layers, moe_layers, kv_bytes, kv_bytes_all_attention
    (or an "error" entry when an offset is not smaller than its period).
    """
    schedule_fn = schedule_fn or hf_schedule

    def draw(n_layers=32, attn_period=8, attn_offset=4, expert_period=2, expert_offset=1, context=262144):
        if attn_offset >= attn_period or expert_offset >= expert_period:
            message = "each offset must be smaller than its period (that layer type would never occur)"
            print(message)
            return {"error": message}
        schedule = schedule_fn(n_layers, attn_period, attn_offset, expert_period, expert_offset)
        n_attn = sum(m == "attention" for m, _ in schedule)
        result = {"schedule": schedule, "attention_layers": n_attn,
                  "moe_layers": sum(f == "moe" for _, f in schedule),
                  "kv_bytes": kv_bytes(n_attn, context, n_kv_heads, head_dim, bytes_per_value),
                  "kv_bytes_all_attention": kv_bytes(n_layers, context, n_kv_heads, head_dim, bytes_per_value)}
        fig, ax = plt.subplots(figsize=(9, 1.2 + 1.1 * max(1, -(-n_layers // 16))))
        draw_schedule(schedule, ax, title=f"{n_layers} layers: {n_attn} attention, {n_layers - n_attn} Mamba, "
                                          f"{result['moe_layers']} MoE")
        fig.tight_layout()
        plt.show()
        ratio = result["kv_bytes_all_attention"] / result["kv_bytes"] if n_attn else float("inf")
        print(f"KV cache at {context:,} tokens ({n_kv_heads} KV heads x {head_dim}, {8 * bytes_per_value}-bit): "
              f"{result['kv_bytes'] / 2**30:.2f} GiB; attention in every layer: "
              f"{result['kv_bytes_all_attention'] / 2**30:.2f} GiB ({ratio:.1f}x)")
        return result

    controls = dict(
        n_layers=W.IntSlider(value=32, min=1, max=64, description="layers"),
        attn_period=W.IntSlider(value=8, min=1, max=16, description="attn period"),
        attn_offset=W.IntSlider(value=4, min=0, max=7, description="attn offset"),
        expert_period=W.IntSlider(value=2, min=1, max=8, description="MoE period"),
        expert_offset=W.IntSlider(value=1, min=0, max=1, description="MoE offset"),
        context=W.SelectionSlider(options=CONTEXTS, value=262144, description="context"),
    )
    # An offset must stay below its period: shrinking a period pulls its offset slider down with it.
    for period, offset in (("attn_period", "attn_offset"), ("expert_period", "expert_offset")):
        def follow(change, offset=controls[offset]):
            offset.max = change["new"] - 1              # ipywidgets clamps the value to the new max
        controls[period].observe(follow, names="value")
    return W.interactive(draw, **controls)
