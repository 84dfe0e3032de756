"""figs/jamba_layers.png: the 32 layers of Jamba-v0.1 (1 attention : 7 Mamba, MoE every other layer).

The layer types are those the Hugging Face JambaConfig of Jamba-v0.1 lists itself
(``layers_block_type``, ``layers_num_experts``; Lieber et al. 2024, arXiv:2403.19887, §2): the
schedule is notebook 04's exercise, so neither this script nor archlab computes it. Deterministic: fixed
size and dpi, no software/date metadata, so running it twice writes identical bytes.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from archlab.llms import published_config  # noqa: E402
from archlab.widgets.jamba import draw_schedule  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "jamba_layers.png"


def main(out=OUT):
    cfg = published_config("Jamba-v0.1")
    schedule = [(mixer, "moe" if n_experts > 1 else "mlp")
                for mixer, n_experts in zip(cfg.layers_block_type, cfg.layers_num_experts)]
    plt.rcParams.update({"font.family": "DejaVu Sans"})
    fig, ax = plt.subplots(figsize=(9, 3.4))
    draw_schedule(schedule, ax, title="Jamba-v0.1: 32 layers (mixer above, MLP below); "
                                      "4 attention, 28 Mamba, 16 MoE (16 experts, top-2)")
    fig.tight_layout()
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
