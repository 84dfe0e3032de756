"""Notebook 04's explorer: a hybrid layer schedule drawn as a diagram, with its KV cache.

Pick the number of layers, the attention period and offset, the expert (MoE) period and
offset, and a context length. The explorer asks YOUR schedule function which layer is what,
draws one box per layer (mixer on top, MLP below) and reports the KV cache of one sequence at
that context, with Jamba-v0.1's attention widths, against the same stack with attention in
every layer.

The bytes are measured, not computed from a formula: transformers' own cache of ONE
Jamba-v0.1 attention layer (8 key/value heads of width 128, 16-bit values) is measured on the
meta device with :func:`archlab.models.cache_bytes`, then multiplied by the number of
attention layers your schedule has. Mamba layers keep a state whose size does not depend on
the context; it is left out here (notebook 04 measures it).

Glossary: attn_period / attn_offset and expert_period / expert_offset are JambaConfig's
attn_layer_period / attn_layer_offset and expert_layer_period / expert_layer_offset (notebook 04
quotes what each means). This module never computes the schedule itself: the diagram shows what
your function returns.
"""

import functools

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.patches import Patch, Rectangle

COLORS = {"attention": "#d95f02", "mamba": "#1b9e77", "moe": "#7570b3", "mlp": "#bdbdbd"}
CONTEXTS = [("4K", 4096), ("32K", 32768), ("128K", 131072), ("256K", 262144), ("1M", 1048576)]


def draw_schedule(schedule, ax, per_row=16, title=""):
    """Draw [(mixer, ffn)] as boxes: one column per layer, mixer on top, MLP below."""
    n = len(schedule)
    rows = max(1, -(-n // per_row))
    for i, (mixer, ffn) in enumerate(schedule):
        r, c = divmod(i, per_row)
        y0 = (rows - 1 - r) * 3.0
        ax.add_patch(Rectangle((c, y0 + 1.0), 0.9, 0.9, color=COLORS.get(mixer, "white")))
        ax.add_patch(Rectangle((c, y0), 0.9, 0.9, color=COLORS.get(ffn, "white")))
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


@functools.cache
def attention_layer_cache_bytes(seq_len):
    """Bytes that ONE attention layer of Jamba-v0.1 keeps for ``seq_len`` tokens of one sequence
    (16-bit): transformers' cache of a one-layer Jamba-v0.1 whose layer is attention, measured
    on the meta device (:func:`archlab.models.cache_bytes`)."""
    from archlab.llms import published_config
    from archlab.models import cache_bytes

    one_layer = published_config("Jamba-v0.1")
    one_layer.num_hidden_layers, one_layer.attn_layer_period, one_layer.attn_layer_offset = 1, 1, 0
    return cache_bytes(one_layer, seq_len)


def jamba_explorer(schedule_fn=None):
    """Layer diagram + KV-cache size under sliders. ``schedule_fn(n_layers, attn_period,
    attn_offset, expert_period, expert_offset) -> [(mixer, ffn)]`` is the student's schedule.

    ``w.result`` is a dict: schedule, attention_layers, moe_layers, kv_bytes, kv_bytes_all_attention
    (or an "error" entry when an offset is not smaller than its period, or when the schedule
    function fails or returns something that is not a list of (mixer, ffn) pairs).
    """
    if not callable(schedule_fn):
        raise TypeError("jamba_explorer needs your schedule function, e.g. jamba_explorer(jamba_layer_schedule)")

    def draw(n_layers=32, attn_period=8, attn_offset=4, expert_period=2, expert_offset=1, context=131072):
        if attn_offset >= attn_period or expert_offset >= expert_period:
            message = "each offset must be smaller than its period (that layer type would never occur)"
            print(message)
            return {"error": message}
        try:
            schedule = list(schedule_fn(n_layers, attn_period, attn_offset, expert_period, expert_offset))
            if not all(isinstance(p, tuple) and len(p) == 2 for p in schedule):
                raise TypeError("it must return a list of (mixer, ffn) tuples")
        except NotImplementedError:
            message = "write jamba_layer_schedule first: the diagram is drawn from what it returns"
            print(message)
            return {"error": message}
        except Exception as err:                   # a student's function: say what went wrong, draw nothing
            message = f"your schedule function failed: {type(err).__name__}: {err}"
            print(message)
            return {"error": message}
        n_attn = sum(m == "attention" for m, _ in schedule)
        per_layer = attention_layer_cache_bytes(context)
        result = {"schedule": schedule, "attention_layers": n_attn,
                  "moe_layers": sum(f == "moe" for _, f in schedule),
                  "kv_bytes": n_attn * per_layer, "kv_bytes_all_attention": n_layers * per_layer}
        fig, ax = plt.subplots(figsize=(9, 1.2 + 1.1 * max(1, -(-n_layers // 16))))
        draw_schedule(schedule, ax, title=f"{n_layers} layers: {n_attn} attention, {n_layers - n_attn} Mamba, "
                                          f"{result['moe_layers']} MoE")
        fig.tight_layout()
        plt.show()
        ratio = f"{result['kv_bytes_all_attention'] / result['kv_bytes']:.1f}x" if n_attn else "no attention layer"
        print(f"KV cache at {context:,} tokens (one Jamba-v0.1 attention layer keeps {per_layer / 2**20:,.0f} MiB, "
              f"measured): {result['kv_bytes'] / 2**30:.2f} GiB; attention in every layer: "
              f"{result['kv_bytes_all_attention'] / 2**30:.2f} GiB ({ratio})")
        return result

    controls = dict(
        n_layers=W.IntSlider(value=32, min=1, max=64, description="layers"),
        attn_period=W.IntSlider(value=8, min=1, max=16, description="attn period"),
        attn_offset=W.IntSlider(value=4, min=0, max=7, description="attn offset"),
        expert_period=W.IntSlider(value=2, min=1, max=8, description="MoE period"),
        expert_offset=W.IntSlider(value=1, min=0, max=1, description="MoE offset"),
        context=W.SelectionSlider(options=CONTEXTS, value=131072, description="context"),
    )
    # An offset must stay below its period: shrinking a period pulls its offset slider down with it.
    for period, offset in (("attn_period", "attn_offset"), ("expert_period", "expert_offset")):
        def follow(change, offset=controls[offset]):
            offset.max = change["new"] - 1              # ipywidgets clamps the value to the new max
        controls[period].observe(follow, names="value")
    return W.interactive(draw, **controls)
