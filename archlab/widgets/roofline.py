"""Notebook 07's explorer: the batch-1..B decode roofline from a measured memory bandwidth.

One decode step reads the weights it uses once for the whole batch and each sequence's own
cache: bytes = weights + B · cache(n). Divided by the bandwidth that is the fastest possible
step; divided by B, the fastest time per generated token. Move the context to see the KV cache
overtake the weights for the Transformer; move the batch to see why batched serving (the
reading's "5×") favours models whose cache does not grow.
"""

import ipywidgets as W
import matplotlib.pyplot as plt

from archlab import cost, equal_size

CONTEXTS = [("128", 128), ("1K", 1024), ("8K", 8192), ("32K", 32768), ("128K", 131072)]
BATCHES = [1, 4, 16, 64, 256]


def roofline_explorer(bandwidth, configs, weight_bytes):
    """bandwidth in bytes/s; configs {family: config}; weight_bytes {family: bytes read per step}.

    ``w.result`` is ``{family: {"bytes", "t_step", "t_token"}}`` after each redraw.
    """

    def draw(context, batch):
        result = {}
        for fam, cfg in configs.items():
            nbytes = weight_bytes[fam] + cost.predicted_state_bytes(cfg, context, batch)
            result[fam] = dict(bytes=nbytes, t_step=nbytes / bandwidth, t_token=nbytes / bandwidth / batch)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        names = [equal_size.LABELS[f] for f in result]
        ax.bar(names, [r["t_token"] * 1e3 for r in result.values()], color="tab:green")
        ax.set_yscale("log")
        ax.set_ylabel("fastest ms per generated token")
        ax.set_title(f"n = {context:,}, batch {batch}, {bandwidth / 1e9:.1f} GB/s")
        ax.tick_params(axis="x", labelrotation=15)
        fig.tight_layout()
        plt.show()
        return result

    return W.interactive(
        draw,
        context=W.SelectionSlider(options=CONTEXTS, value=1024, description="context"),
        batch=W.SelectionSlider(options=BATCHES, value=1, description="batch"),
    )
