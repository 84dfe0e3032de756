# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Practice lab: Transformer against Mamba, fairly
#
# **Mirrors:** §7 of the reading, *Practice Guidelines* (steps 1–5).
# **Estimated time:** 60 minutes.
#
# **How to start.** Run the cells from the top (*Run → Run All Cells* works once you have filled
# in the exercise). The exercise cell says `YOUR CODE HERE`: replace `raise
# NotImplementedError()` with your code, then run the test cell under it.
#
# **How to check your work.** The test cell under the exercise runs *visible* tests; when you
# submit, the grader also runs *hidden* tests (a brute-force search, edge cases) that count
# towards your grade. The written answer is graded by your instructor.
#
# By the end you will be able to
# 1. check what your environment offers (versions, device, optional CUDA kernels);
# 2. run the reading's Mamba block example on any machine;
# 3. say why the reading's speed comparison is unfair, and run a fair one: equal parameter
#    count, prefill and cached decode timed separately;
# 4. compute how long a context fits in a memory budget, for each architecture;
# 5. profile a decode step per layer, and compare it with the memory-bandwidth bound.
#
# **Notation.** `n` context length, `B` batch, `D` width, bytes/s for bandwidth.

# %% tags=["parameters"]
DEVICE = "auto"   # "auto" picks CUDA when present, else CPU; or "cpu" / "cuda"
QUICK = True      # tiny models (CI and grading); False for ~125M-parameter models
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import importlib.util
import math
import os
import platform
import statistics
import time

import matplotlib.pyplot as plt
import torch
import transformers
from torch.profiler import ProfilerActivity, profile, record_function

from archlab import compare, measure, models, widgets
from archlab.device import describe_machine, pick_device, synchronize

if os.environ.get("NBGRADER_EXECUTION"):
    QUICK = True  # the grader always runs the small version
device = pick_device(DEVICE)
from archlab import fastpaths  # noqa: E402
fastpaths.show(device)  # which implementation each fast path uses here, kept in the output
torch.manual_seed(SEED);

# %% [markdown]
# ## Steps 1–2. The environment
#
# The reading creates a conda environment with Python 3.10 and runs `pip install torch
# torchvision torchaudio` and `pip install transformers[torch]`. This course pins its own
# environment instead: `make lab` (in the repository root) creates `.venv`, installs the pinned
# torch and transformers and the course's helpers, and opens JupyterLab; `make test` does the
# same and runs the tests. torchvision and torchaudio are not needed here. The reading's check,
# `python -c "import torch; import transformers; print('OK')"`, becomes the cell below, which
# also says which device you run on and whether the optional CUDA kernels are installed.

# %%
def has(package):
    return importlib.util.find_spec(package) is not None


machine = describe_machine()
print(f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}")
print(f"device: {device}; CPU: {machine['cpu_model']} ({machine['logical_cores']} logical cores, "
      f"torch uses {machine['torch_threads']} threads)")
for dev in machine["cuda_devices"]:
    print(f"GPU: {dev['name']}, {dev['memory_bytes'] / 2**30:.1f} GiB")
for pkg in ("mamba_ssm", "causal_conv1d"):
    print(f"{pkg}: {'installed' if has(pkg) else 'not installed'}"
          + ("" if has(pkg) else " (CUDA-only kernels; the pure-PyTorch path is used instead)"))

# %% [markdown]
# ## Step 3. The reading's Mamba block
#
# `pip install mamba-ssm` builds CUDA kernels: it needs Linux and an NVIDIA GPU. On a GPU with
# mamba-ssm installed the cell below uses it; otherwise it uses a pure-PyTorch block with the
# same constructor (`Mamba(d_model, d_state, d_conv, expand)`), so the reading's example runs
# as written.

# %%
from archlab.mamba import mamba_block_class

Mamba, mamba_source = mamba_block_class(device)
print("Mamba block from:", mamba_source)

mamba_block = Mamba(d_model=32, d_state=64, d_conv=4, expand=2).to(device).eval()  # 32-dimensional model
x = torch.randn(1, 10, 32, device=device)  # arbitrary input with sequence length 10
with torch.no_grad():
    y = mamba_block(x)
print(y.shape)  # output (1, 10, 32)

# %% [markdown]
# ## Step 4. The reading's speed comparison, and why it is unfair
#
# The reading times `gpt2.generate(max_new_tokens=50)` against **one** Mamba block's forward
# over 50 random vectors, and calls the ratio "how much faster Mamba is". Here it is with local
# tiny models (the hub's GPT-2 is not downloaded), to see the size of the artefact:

# %%
gpt2_tiny = models.build_model("gpt2", "tiny", seed=SEED, device=device)
prompt_ids = torch.randint(3, 200, (1, 6), device=device)  # stands in for the tokenised prompt
start_time = time.time()
with torch.no_grad():
    gpt2_tiny.generate(prompt_ids, max_new_tokens=50, do_sample=False, pad_token_id=0)
transformer_time = time.time() - start_time
one_block = Mamba(d_model=gpt2_tiny.config.n_embd, d_state=64, d_conv=4, expand=2).to(device).eval()
start_time = time.time()
with torch.no_grad():
    one_block(torch.randn(1, 50, gpt2_tiny.config.n_embd, device=device))
mamba_time = time.time() - start_time
print(f"reading's method: 'Mamba is {transformer_time / mamba_time:.1f}x faster' "
      f"({transformer_time * 1e3:.1f} ms against {mamba_time * 1e3:.1f} ms)")

# %% [markdown]
# Why that ratio says nothing about the architectures:
#
# * **Different work.** `generate` runs 50 *sequential* decode steps through a whole model
#   (embedding, every layer, LM head, sampling logic); the Mamba side runs *one* parallel
#   forward of *one* layer over 50 tokens. Sequential steps pay per-call overhead 50 times.
# * **Different sizes.** GPT-2 small has 124M parameters; one Mamba block of width 768 has
#   about 5M — Mamba-130m stacks 24 of them plus an embedding and an LM head.
# * **Bad timing.** One `time.time()` measurement, no warm-up (the first call includes
#   one-off costs), and on a GPU no synchronisation (CUDA calls return before the work ends).
#
# A fair comparison: whole language models with the same number of parameters; prefill (one
# forward over the prompt) and decode (one token with the cache) timed **separately**;
# warm-up, synchronisation, medians.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_unfair_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Your answer.** In three or four sentences: what does the reading's step 4 actually measure
# on each side, and what would you change to compare the architectures?
#
# ### BEGIN SOLUTION
# **Model answer.** The Transformer side times 50 sequential decode steps of a full 124M-parameter
# language model, with its per-step overhead; the Mamba side times one parallel forward of one
# randomly initialised layer (a few million parameters) over 50 tokens. The ratio mixes model
# size, prefill against decode, and one-off start-up costs (no warm-up, a single `time.time()`
# measurement, no CUDA synchronisation). A fair test builds both as whole models with the same
# parameter count, times prefill and cached decode separately against context length, warms up,
# synchronises, and reports medians.
#
# **Rubric (2 points).** 1 point: names at least two of the differences (whole model vs one
# block / parameter count; sequential decode vs one parallel forward; warm-up/synchronisation).
# 1 point: proposes equal-size models with prefill and decode timed separately.
# ### END SOLUTION

# %% [markdown]
# ### The fair comparison
#
# `compare.build_equal_size` builds GPT-2 and Mamba language models with about the same number
# of parameters. We time the prefill with `archlab.measure.time_fn` (warm-up, synchronise,
# median) and the cached decode step with a loop that does the same for single tokens.

# %%
CONTEXTS = [32, 64, 128, 256] if QUICK else [128, 512, 1024, 2048]
SIZE = "tiny" if QUICK else "base"
PAIR = compare.build_equal_size(SIZE, max_context=max(CONTEXTS), seed=SEED, device=device,
                                families=("gpt2", "mamba"))


def time_decode(model, n, steps=4, warmup=1):
    """Median seconds of one cached decode step after n tokens (as notebook 05's exercise)."""
    ids = compare.random_ids(model, 1, n + warmup + steps, device=device)
    _, cache = compare.forward(model, ids[:, :n])
    times = []
    for i in range(warmup + steps):
        synchronize(device)
        t0 = time.perf_counter()
        _, cache = compare.forward(model, ids[:, n + i:n + i + 1], cache)
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


FAIR = {}
for fam, m in PAIR.items():
    FAIR[fam] = {"params": models.count_params(m), "prefill_s": [], "decode_s": []}
    for n in CONTEXTS:
        ids = compare.random_ids(m, 1, n, device=device)
        FAIR[fam]["prefill_s"].append(measure.time_fn(lambda: compare.forward(m, ids), warmup=1, repeat=3,
                                                      device=device).median)
        FAIR[fam]["decode_s"].append(time_decode(m, n))
print(f"{'model':8s} {'params':>12s} " + " ".join(f"{'n=' + str(n):>18s}" for n in CONTEXTS))
for fam, r in FAIR.items():
    cells = " ".join(f"{p * 1e3:7.1f} / {d * 1e3:6.2f} ms" for p, d in zip(r["prefill_s"], r["decode_s"]))
    print(f"{fam:8s} {r['params']:>12,} {cells}")
print("(each cell: prefill of the whole prompt / one cached decode step)")

# %%
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
for fam, r in FAIR.items():
    a1.loglog(CONTEXTS, r["prefill_s"], marker="o", label=compare.LABELS[fam])
    a2.loglog(CONTEXTS, r["decode_s"], marker="o", label=compare.LABELS[fam])
a1.set(xlabel="context n", ylabel="prefill (s)", title="prefill: the whole prompt")
a2.set(xlabel="context n", ylabel="decode (s per token)", title="decode: one token with the cache")
for ax in (a1, a2):
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Step 5a. Long context in a fixed memory budget
#
# The reading suggests feeding a 100K-token prompt and watching memory. We can compute the
# answer first: decode needs the weights plus the cache for n tokens. A Transformer's KV cache
# grows by `2·layers·D·bytes` per token, so a budget caps the context; Mamba's and RWKV's state
# does not grow, so the cache never caps it (the prefill's activations still do, unless the
# prompt is fed in chunks).
#
# ### Exercise: `max_context_in_budget`
#
# `max_context_in_budget(config, budget_bytes, weight_bytes, batch=1, bytes_per_value=4)`
# returns the largest context `n ≥ 0` such that `weight_bytes +
# compare.predicted_state_bytes(config, n, batch, bytes_per_value) <= budget_bytes`, or
# `math.inf` when the cache does not grow with `n`, or `-1` when not even `n = 0` fits. Do not
# loop over every `n` (contexts reach millions): the cache is a (possibly constant) linear
# function of `n`, so evaluate it at two points, or search by bisection.

# %% nbgrader={"grade": false, "grade_id": "max_context_in_budget", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_context_in_budget(config, budget_bytes, weight_bytes, batch=1, bytes_per_value=4):
    """Largest n with weights + cache(n) <= budget; math.inf if the cache is constant; -1 if nothing fits."""
    if budget_bytes < 0 or weight_bytes < 0:
        raise ValueError(f"budget_bytes and weight_bytes must be >= 0; got {budget_bytes}, {weight_bytes}")
    ### BEGIN SOLUTION
    def cache(n):
        return compare.predicted_state_bytes(config, n, batch, bytes_per_value)

    base = weight_bytes + cache(0)           # what decode needs before any token
    if base > budget_bytes:
        return -1
    per_token = cache(1) - cache(0)          # bytes added by each cached token
    if per_token == 0:
        return math.inf                      # Mamba / RWKV: the state does not grow
    return int((budget_bytes - base) // per_token)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_max_context_in_budget", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""max_context_in_budget: a GPT-2 worked example and inf for Mamba; hidden: a bisection over n for random budgets, batch, dtype sizes and all four families, the boundary exactly, -1 when the weights alone do not fit."""
_g2 = models.make_config("gpt2", "tiny")               # 4 layers, D = 64: 2·4·64·4 = 2048 bytes a token
_v = max_context_in_budget(_g2, 10_000 + 2048 * 100, 10_000)
assert _v == 100, f"10,000 B of weights + 100 tokens x 2,048 B fill the budget exactly: expected 100, got {_v}"
_v = max_context_in_budget(_g2, 10_000 + 2048 * 100 - 1, 10_000)
assert _v == 99, f"one byte less: token 100 no longer fits, expected 99, got {_v}"
_v = max_context_in_budget(models.make_config("mamba", "tiny"), 10**9, 10_000)
assert _v == math.inf, f"Mamba's state does not grow with n: expected math.inf, got {_v}"
### BEGIN HIDDEN TESTS
import random as _random


def _brute(cfg, budget, weights, B, bpv):
    fits = lambda n: weights + compare.predicted_state_bytes(cfg, n, B, bpv) <= budget
    if not fits(0):
        return -1
    if compare.predicted_state_bytes(cfg, 1, B, bpv) == compare.predicted_state_bytes(cfg, 0, B, bpv):
        return math.inf
    lo, hi = 0, 1
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


_rng = _random.Random(7)
_cfgs = {f: models.make_config(f, s) for f in compare.FAMILIES for s in ("tiny", "base")}
for _trial in range(40):
    _f = _rng.choice(list(compare.FAMILIES))
    _cfg = models.make_config(_f, _rng.choice(["tiny", "base"]))
    _B, _bpv = _rng.choice([1, 2, 8]), _rng.choice([2, 4])
    _w = _rng.randrange(0, 10**8)
    _budget = _w + _rng.randrange(-10**6, 10**10)
    _want = _brute(_cfg, _budget, _w, _B, _bpv)
    _got = max_context_in_budget(_cfg, _budget, _w, batch=_B, bytes_per_value=_bpv)
    assert _got == _want, (f"{_f} (B={_B}, {_bpv}-byte values, weights {_w:,} B, budget {_budget:,} B): "
                           f"expected {_want}, got {_got}")
# the boundary: exactly at the budget still fits
_j = models.make_config("jamba", "base")
_n0 = 1234
_exact = 5_000 + compare.predicted_state_bytes(_j, _n0)
assert max_context_in_budget(_j, _exact, 5_000) == _n0
assert max_context_in_budget(_j, _exact - 1, 5_000) == _n0 - 1
assert max_context_in_budget(_g2, 9_999, 10_000) == -1, "weights alone over budget: -1"
assert max_context_in_budget(models.make_config("rwkv", "tiny"), 10**6, 2 * 10**6) == -1
### END HIDDEN TESTS

# %% [markdown]
# Now for the equal-size models in a fixed budget (16 MiB in QUICK mode for the tiny models,
# 8 GiB for the ~125M ones: a laptop's free memory), in float32. The peak memory of a prefill
# is measured too: activations, not the cache, are what a long *prompt* costs Mamba.

# %%
BUDGET = 16 * 2**20 if QUICK else 8 * 2**30
EQUAL = compare.build_equal_size(SIZE, max_context=max(CONTEXTS), seed=SEED, device=device)
BUDGET_ROWS = {}
for fam, m in EQUAL.items():
    n_max = max_context_in_budget(m.config, BUDGET, compare.weight_bytes(m))
    BUDGET_ROWS[fam] = n_max
    print(f"{compare.LABELS[fam]:22s} weights {compare.weight_bytes(m) / 2**20:8.2f} MiB -> longest context in "
          f"{BUDGET / 2**20:.0f} MiB: {'unlimited by the cache' if n_max == math.inf else f'{n_max:,} tokens'}")
n_peak = CONTEXTS[-1]
for fam in ("gpt2", "mamba"):
    ids = compare.random_ids(EQUAL[fam], 1, n_peak, device=device)
    _, peak = measure.peak_memory(lambda: compare.forward(EQUAL[fam], ids), device=device)
    print(f"peak memory of a {n_peak}-token prefill, {fam}: {peak / 2**20:.2f} MiB")

# %% [markdown]
# ## Step 5b. Where the time goes: `torch.profiler` per layer
#
# We label each block's parts with `record_function` (through forward hooks) and profile one
# decode step at the longest context. The table lists the time spent in each kind of part.

# %%
def label_parts(model):
    """Forward hooks that open a profiler range around each mixer / MLP / head; returns the handles."""
    handles = []
    for name, mod in model.named_modules():
        leaf = name.split(".")[-1]
        if leaf in ("attn", "mlp", "mixer", "attention", "feed_forward", "self_attn", "mamba", "lm_head"):
            kind = {"attention": "time-mix (RWKV)", "feed_forward": "feed-forward (RWKV channel-mix / Jamba MLP, MoE)",
                    "self_attn": "attn", "mamba": "mixer"}.get(leaf, leaf)
            ctx = {}

            def pre(mod, args, kind=kind, ctx=ctx):
                ctx["r"] = record_function(f"part: {kind}")
                ctx["r"].__enter__()

            def post(mod, args, out, ctx=ctx):
                ctx["r"].__exit__(None, None, None)

            handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    return handles


PROFILE = {}
for fam, m in EQUAL.items():
    ids = compare.random_ids(m, 1, n_peak + 2, device=device)
    _, cache = compare.forward(m, ids[:, :n_peak])
    _, cache = compare.forward(m, ids[:, n_peak:n_peak + 1], cache)  # warm-up step
    handles = label_parts(m)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        compare.forward(m, ids[:, n_peak + 1:n_peak + 2], cache)
    for h in handles:
        h.remove()
    parts = {e.key[len("part: "):]: e.cpu_time_total / 1e3 for e in prof.key_averages() if e.key.startswith("part: ")}
    total = sum(parts.values())
    PROFILE[fam] = parts
    print(f"{compare.LABELS[fam]}: " + ", ".join(f"{k} {v:.2f} ms ({v / total:.0%})"
                                                 for k, v in sorted(parts.items(), key=lambda kv: -kv[1])))

# %% [markdown]
# ## Step 5c. The decode roofline
#
# At batch 1, one decode step reads every weight it uses once, plus the cache (the KV cache
# for attention; the fixed state for Mamba/RWKV). It cannot take less than
#
# $$t_\text{min} = \frac{\text{bytes read per token}}{\text{memory bandwidth}}$$
#
# We measure the bandwidth here (a large tensor copy, which reads and writes each byte) and
# compare each model's measured decode time with its $t_\text{min}$. A fraction near 1 means
# the step is limited by memory traffic; far below 1 means overhead (Python, kernel launches)
# dominates, as it does for tiny models.

# %%
BANDWIDTH = compare.memory_bandwidth(device, n_bytes=(64 if QUICK else 512) * 2**20)
print(f"measured copy bandwidth: {BANDWIDTH / 1e9:.1f} GB/s")
ROOF = {}
for fam, m in EQUAL.items():
    n = CONTEXTS[-1]
    bytes_read = compare.active_weight_bytes(m) + compare.predicted_state_bytes(m.config, n)
    t_min = bytes_read / BANDWIDTH
    t_meas = time_decode(m, n)
    ROOF[fam] = dict(bytes=bytes_read, t_min=t_min, t=t_meas, fraction=t_min / t_meas)
    print(f"{compare.LABELS[fam]:22s} reads {bytes_read / 2**20:8.2f} MiB/token: bound {t_min * 1e3:7.3f} ms, "
          f"measured {t_meas * 1e3:7.2f} ms -> {t_min / t_meas:.1%} of the bandwidth bound")

# %% [markdown]
# The explorer below uses the bandwidth you just measured: move the context and the batch and
# see when the KV cache, not the weights, decides a Transformer's decode time (at batch B the
# weights are read once for all B sequences, each sequence reads its own cache).

# %%
roofline = widgets.roofline_explorer(BANDWIDTH, {f: m.config for f, m in EQUAL.items()},
                                     {f: compare.active_weight_bytes(m) for f, m in EQUAL.items()})
roofline

# %% [markdown]
# ## Conclusions, from the numbers above

# %%
n_last = CONTEXTS[-1]
g, mb = FAIR["gpt2"], FAIR["mamba"]
print(f"1. At equal size ({g['params']:,} vs {mb['params']:,} parameters), one cached decode step at n={n_last} "
      f"took {g['decode_s'][-1] * 1e3:.2f} ms (GPT-2) and {mb['decode_s'][-1] * 1e3:.2f} ms (Mamba): "
      f"ratio {g['decode_s'][-1] / mb['decode_s'][-1]:.2f}, not the reading's "
      f"{transformer_time / mamba_time:.1f}x from timing generate() against one block.")
print(f"2. GPT-2's decode time grew with n as n^{compare.fit_exponent(CONTEXTS, g['decode_s']):.2f}, "
      f"Mamba's as n^{compare.fit_exponent(CONTEXTS, mb['decode_s']):.2f} over n = {CONTEXTS[0]}..{n_last}.")
fmt = lambda v: "no cache limit" if v == math.inf else f"{v:,} tokens"
print(f"3. In {BUDGET / 2**20:.0f} MiB: GPT-2 fits {fmt(BUDGET_ROWS['gpt2'])}, Jamba {fmt(BUDGET_ROWS['jamba'])}, "
      f"Mamba {fmt(BUDGET_ROWS['mamba'])}, RWKV {fmt(BUDGET_ROWS['rwkv'])}.")
print(f"4. The bandwidth bound explains {ROOF['gpt2']['fraction']:.1%} (GPT-2) and {ROOF['mamba']['fraction']:.1%} "
      f"(Mamba) of the measured decode time at this size: "
      + ("overhead, not memory traffic, dominates." if max(r['fraction'] for r in ROOF.values()) < 0.5
         else "memory traffic dominates."))

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["BUDGET_ROWS"])
