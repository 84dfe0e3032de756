"""Notebook 05's explorer: cache/state bytes and predicted decode time at any context and batch.

The bytes come from the configuration (``cost.predicted_state_bytes``, exact); the decode
time per token from the power law c·nᵖ fitted to the learner's own measurements (a guess
outside the measured range, and the explorer says so). Move the context slider to see the
Transformer's KV cache overtake its weights while Mamba's and RWKV's state stays put.
"""

import ipywidgets as W
import matplotlib.pyplot as plt

from archlab import cost, equal_size, fits

CONTEXTS = [("128", 128), ("1K", 1024), ("8K", 8192), ("32K", 32768), ("128K", 131072), ("1M", 1048576)]
BATCHES = [1, 4, 16, 64, 256]


def comparison_explorer(meas, configs):
    """meas: the measurements dict of notebook 05; configs: {family: transformers config}.

    ``w.result`` is ``{family: {"cache_bytes", "decode_s", "extrapolated"}}`` after each redraw.
    """
    decode_fits = {f: fits.fit_power_law(meas["contexts"], r["decode_s"]) for f, r in meas["models"].items()}
    n_max = max(meas["contexts"])

    def draw(context, batch):
        result = {}
        for fam, cfg in configs.items():
            p, c = decode_fits[fam]
            result[fam] = dict(cache_bytes=cost.predicted_state_bytes(cfg, context, batch),
                               decode_s=c * context ** p, extrapolated=context > n_max)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
        names = [equal_size.LABELS[f] for f in result]
        a1.bar(names, [r["cache_bytes"] / 2**20 for r in result.values()], color="tab:blue")
        a1.set_yscale("log")
        a1.set_ylabel("cache / state (MiB)")
        a1.set_title(f"n = {context:,} tokens, batch {batch}")
        a2.bar(names, [r["decode_s"] * 1e3 for r in result.values()], color="tab:orange")
        a2.set_ylabel("decode ms per token (batch 1, fitted)")
        a2.set_title("extrapolated beyond the measurements" if context > n_max else "within the measured range")
        for ax in (a1, a2):
            ax.tick_params(axis="x", labelrotation=15)
        fig.tight_layout()
        plt.show()
        return result

    return W.interactive(
        draw,
        context=W.SelectionSlider(options=CONTEXTS, value=8192, description="context"),
        batch=W.SelectionSlider(options=BATCHES, value=1, description="batch"),
    )
