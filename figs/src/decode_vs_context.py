"""figs/decode_vs_context.png: decode time per token and batch-1 throughput against context
length, from the project's own measurements (figs/data/decode_vs_context.json).

Stands in for the reading's missing Jamba throughput figure. The numbers were measured with
figs/data/measure_decode.py (random-weight archlab.models "base" sizes, float32, Hugging Face
`generate`, batch 1) on the machine the JSON names; this script only draws them, so it is
deterministic (fixed size and dpi, no software/date metadata). What to look for: the
Transformer's step time grows with the context (each new token attends over the whole KV
cache); Mamba's stays roughly flat (a fixed-size state); the hybrid's grows less than the
Transformer's because only one layer in four attends. The three models differ in size, so
compare how each curve rises, not their heights; the machine was shared, so single points are
noisy. The reading's "3x throughput at long context" is AI21's figure for the real models on
GPUs at 128K tokens; these are small models on a CPU.

    python figs/src/decode_vs_context.py [OUT_DIR]     (default figs/; or set FIGS_OUT)
"""

import json
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGS = Path(__file__).resolve().parent.parent
DATA = FIGS / "data" / "decode_vs_context.json"
NAME = "decode_vs_context.png"
LABELS = {"llama": "Transformer (Llama parts)", "mamba": "Mamba", "jamba": "Jamba hybrid (1 attention : 3 Mamba)"}
COLORS = {"llama": "tab:red", "mamba": "tab:green", "jamba": "tab:blue"}


def out_dir():
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    return Path(os.environ.get("FIGS_OUT", FIGS))


def main():
    data = json.loads(DATA.read_text())
    m = data["machine"]
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 10})
    fig, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(10, 4.4))
    for family, series in data["series"].items():
        ctx = [r["context"] for r in series["rows"]]
        ms = [r["median_s"] * 1e3 for r in series["rows"]]
        c = series["config"]
        label = f"{LABELS.get(family, family)}: {c['num_hidden_layers']} x {c['hidden_size']}"
        ax_t.plot(ctx, ms, "o-", color=COLORS.get(family), label=label)
        ax_r.plot(ctx, [1e3 / t for t in ms], "o-", color=COLORS.get(family), label=label)
    for ax in (ax_t, ax_r):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ctx, [f"{L // 1024}K" if L >= 1024 else str(L) for L in ctx])
        ax.minorticks_off()
        ax.set_xlabel("context length (prompt tokens)")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_t.set_ylabel("decode time per token (ms)")
    ax_t.set_title("time of one decoding step")
    ax_r.set_ylabel("throughput, batch 1 (tokens/s)")
    ax_r.set_title("generation throughput")
    ax_t.legend(fontsize=8.5, frameon=False, loc="upper left")
    threads = m.get("torch_threads")
    repeats = data.get("repeats", 1)
    fig.suptitle("Measured by this project (figs/data/decode_vs_context.json): random-weight 'base' "
                 f"models, float32, batch 1, {m['cpu_model']} CPU, {threads} threads;\n"
                 f"median of {data['new_tokens'] - 1} decoding steps, best of {repeats} runs, "
                 "on a machine shared with other jobs (absolute times inflated)", fontsize=9)
    fig.tight_layout()
    out = out_dir() / NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
