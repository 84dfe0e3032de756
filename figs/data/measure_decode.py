"""Measure decode time per token against context length: figs/data/decode_vs_context.json.

Not a figure script (it is slow and its numbers depend on the machine), so it lives beside its
data, not in figs/src/; figs/src/decode_vs_context.py draws the committed JSON.

For each model family (archlab.models "base" sizes, random weights, float32) and each context
length L: generate from a random prompt of L tokens with the real Hugging Face `generate` code
path (KV cache for attention layers, recurrent state for Mamba layers) and record the wall time
between consecutive decoding steps with a logits processor, which Hugging Face calls once per
new token. The median step time of a run is the decode time per token at context ~L; of
`--repeats` runs the smallest median is kept (other processes sharing the CPU only ever add
time). Its inverse is the batch-1 throughput in tokens/s. Prefill is not included.

    .venv/bin/python figs/data/measure_decode.py [--contexts 128 512 ...] [--new 12] [--out PATH]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from archlab.device import describe_machine
from archlab.models import build_model, make_config

OUT = Path(__file__).resolve().parent / "decode_vs_context.json"
# Families compared: a pure Transformer (Llama parts), pure Mamba, and the Jamba hybrid
# (1 attention layer in 4 at this size). Positions are raised so long prompts are allowed.
FAMILIES = {
    "llama": dict(max_position_embeddings=8192),
    "mamba": dict(),
    "jamba": dict(max_position_embeddings=8192),
}


class StepClock(LogitsProcessor):
    """Records time.perf_counter() each time generate asks for the next token's scores."""

    def __init__(self):
        self.stamps = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


def decode_step_times(model, context, new_tokens, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(3, vocab, (1, context), generator=g)     # (1, L)
    clock = StepClock()
    with torch.inference_mode():
        model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                       logits_processor=LogitsProcessorList([clock]), pad_token_id=0)
    # stamp 0 comes after the prefill; each later gap is one decoding step (forward + select)
    return [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096])
    ap.add_argument("--new", type=int, default=12, help="new tokens per run (steps timed: new-1)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per point; the smallest median is kept")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    ap.add_argument("--note", default="", help="what else ran on the machine, etc.")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    results = {"what": "median wall time of one decoding step (batch 1, float32, CPU) after a "
                       "prompt of `context` tokens; archlab.models 'base' sizes, random weights",
               "method": "figs/data/measure_decode.py: HF generate, a LogitsProcessor time-stamps "
                         "each step; median over new-1 steps, smallest of `repeats` runs",
               "new_tokens": args.new, "repeats": args.repeats, "note": args.note,
               "machine": describe_machine(), "series": {}}
    for family in args.families:
        cfg = make_config(family, "base", **FAMILIES[family])
        model = build_model(cfg, seed=0)
        decode_step_times(model, 16, 3, cfg.vocab_size)          # warm-up (allocators, kernels)
        rows = []
        for L in args.contexts:
            runs = [decode_step_times(model, L, args.new, cfg.vocab_size) for _ in range(args.repeats)]
            best = min(runs, key=statistics.median)
            rows.append({"context": L, "median_s": round(statistics.median(best), 6),
                         "run_medians_s": [round(statistics.median(r), 6) for r in runs],
                         "steps_s": [round(s, 6) for s in best]})
            print(f"{family:6s} L={L:5d} {rows[-1]['median_s'] * 1e3:8.2f} ms/token", flush=True)
        results["series"][family] = {"config": {k: getattr(cfg, k) for k in (
            "hidden_size", "num_hidden_layers")}, "rows": rows}
        del model
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
