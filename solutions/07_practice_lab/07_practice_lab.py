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
# **How to check your work.** The test cell under the exercise runs *visible* tests: small
# worked examples whose numbers you can follow by hand; when a result is wrong they say which
# known mistake it looks like (the weights forgotten, one token too many...). Passing silently
# means they passed. When you submit, the grader also runs *hidden* tests (a brute-force search
# over random budgets and caches, every model family, edge cases) that count towards your grade.
# The written answer is graded by your instructor.
#
# **What grading runs.** When your notebook is graded (`NBGRADER_EXECUTION` is set), the timing
# sweeps run at two context lengths, the plots, the explorer, the peak-memory measurement and
# the cross-check of the caches are skipped: no graded test reads them. Run them yourself; they
# are the point of the lab.
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
QUICK = True      # tiny models (CI and grading); False for models the size of GPT-2 small
SEED = 0

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import importlib.util
import math
import platform
import time

import matplotlib.pyplot as plt
import torch
import transformers
from IPython.display import display
from torch.profiler import ProfilerActivity, profile, record_function

from archlab import cost, equal_size, fits, measure, models, widgets
from archlab.checks import assert_close
from archlab.course import setup
from archlab.device import describe_machine

device, QUICK, GRADING = setup(DEVICE, QUICK, SEED)   # QUICK is always True while nbgrader grades (GRADING)

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
# * **Different sizes.** A whole GPT-2 small against *one* Mamba block of the same width:
#   Mamba-130m stacks 24 such blocks (with a smaller state, N = 16) plus an embedding and an LM
#   head. The cell below counts both sides of the reading's step 4 (the reading calls GPT-2
#   small "150M parameter level": the count is the number to use).
# * **Bad timing.** One `time.time()` measurement, no warm-up (the first call includes
#   one-off costs), and on a GPU no synchronisation (CUDA calls return before the work ends).
#
# A fair comparison: whole language models with the same number of parameters; prefill (one
# forward over the prompt) and decode (one token with the cache) timed **separately**;
# warm-up, synchronisation, medians.

# %%
# Both sides of the reading's step 4, counted. GPT-2 small is built on the meta device (shapes
# only, no memory); the block is the reading's Mamba(d_model=768, d_state=64, d_conv=4, expand=2).
gpt2_small_params = models.n_parameters(models.meta_model(models.make_config("gpt2", "base")))
block_768_params = models.n_parameters(Mamba(d_model=768, d_state=64, d_conv=4, expand=2))
print(f"GPT-2 small: {gpt2_small_params:,} parameters (the reading: '150M parameter level')")
print(f"one Mamba block of width 768 (d_state=64, d_conv=4, expand=2): {block_768_params:,} parameters, "
      f"{gpt2_small_params / block_768_params:.0f}x fewer than the model it is timed against")

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_unfair_written", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# **Your answer.** In three or four sentences: what does the reading's step 4 actually measure
# on each side, and what would you change to compare the architectures?
#
# ### BEGIN SOLUTION
# **Model answer.** The Transformer side times 50 sequential decode steps of a whole GPT-2 small
# language model, with its per-step overhead; the Mamba side times one parallel forward of one
# randomly initialised layer (a small fraction of GPT-2's parameters, as counted above) over 50
# tokens. The ratio mixes model
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
# `equal_size.build_equal_size` builds GPT-2 and Mamba language models with about the same number
# of parameters. Both phases are timed with `archlab.measure.time_fn` (warm-up, synchronise,
# median): the prefill as one forward over the prompt, the decode step as transformers'
# cache-aware forward (`equal_size.forward` with the cache) fed one token. Notebook 05 had you
# write these loops; here the library does it.

# %%
CONTEXTS = [32, 64, 128, 256] if QUICK else [128, 512, 1024, 2048]
if GRADING:
    CONTEXTS = [16, 64]   # no graded test reads the timings: the smallest sweep that has a slope
SIZE = "tiny" if QUICK else "base"
PAIR = equal_size.build_equal_size(SIZE, max_context=max(CONTEXTS), seed=SEED, device=device,
                                families=("gpt2", "mamba"))


def time_decode(model, n, steps=4, warmup=1):
    """Median seconds of one decode step after n tokens: archlab.measure.time_fn around transformers'
    cache-aware forward. Every call feeds one more token to the same cache, so the steps run at
    contexts n, n+1, ..., n+warmup+steps-1 (a few tokens more than n: the same cost for our purpose)."""
    ids = equal_size.random_ids(model, 1, n + 1, device=device)              # (1, n + 1)
    _, cache = equal_size.forward(model, ids[:, :n])                          # prefill: the cache of n tokens
    one_step = lambda: equal_size.forward(model, ids[:, n:], cache)           # one token (1, 1) with the cache
    return measure.time_fn(one_step, warmup=warmup, repeat=steps, device=device).median


FAIR = {}
for fam, m in PAIR.items():
    FAIR[fam] = {"params": models.n_parameters(m), "prefill_s": [], "decode_s": []}
    for n in CONTEXTS:
        ids = equal_size.random_ids(m, 1, n, device=device)
        FAIR[fam]["prefill_s"].append(measure.time_fn(lambda: equal_size.forward(m, ids), warmup=1, repeat=3,
                                                      device=device).median)
        FAIR[fam]["decode_s"].append(time_decode(m, n))
print(f"{'model':8s} {'params':>12s} " + " ".join(f"{'n=' + str(n):>18s}" for n in CONTEXTS))
for fam, r in FAIR.items():
    cells = " ".join(f"{p * 1e3:7.1f} / {d * 1e3:6.2f} ms" for p, d in zip(r["prefill_s"], r["decode_s"]))
    print(f"{fam:8s} {r['params']:>12,} {cells}")
print("(each cell: prefill of the whole prompt / one cached decode step)")

# %%
if GRADING:
    print("(plots skipped while grading)")
else:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for fam, r in FAIR.items():
        a1.loglog(CONTEXTS, r["prefill_s"], marker="o", label=equal_size.LABELS[fam])
        a2.loglog(CONTEXTS, r["decode_s"], marker="o", label=equal_size.LABELS[fam])
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
# answer first: decode needs the weights plus the cache for n tokens. A Transformer's cache
# grows by the same number of bytes with every token (a key and a value per layer), so a budget
# caps the context; Mamba's and RWKV's state does not grow, so the cache never caps it (the
# prefill's activations still do, unless the prompt is fed in chunks). Jamba is both: a fixed
# Mamba state plus keys and values in its few attention layers.
#
# ### Exercise: `max_context_in_budget`
#
# `max_context_in_budget(cache_bytes_at, budget_bytes, weight_bytes)` returns the longest
# context `n ≥ 1` whose decode fits in the budget: `weight_bytes + cache_bytes_at(n) <=
# budget_bytes`.
#
# * `cache_bytes_at(n)` gives the bytes of the model's cache after `n` tokens, for `n ≥ 1`. You
#   do not compute it: the cells below pass a library helper, `archlab.models.cache_bytes`
#   (transformers' own cache, measured on the meta device) or `cost.predicted_state_bytes`
#   (the configuration's formula). Every cache here is a fixed part plus the same bytes per
#   token: `cache_bytes_at(n) = fixed + n · per_token`, with `per_token = 0` for Mamba and RWKV.
# * Return `math.inf` when the cache does not grow and one token fits, `0` when not even
#   `n = 1` fits, and otherwise the largest `n` as an `int`.
# * Do not try every `n`: contexts reach millions, and one call of a helper can take a second.
#   Two calls give `fixed` and `per_token`.

# %% nbgrader={"grade": false, "grade_id": "max_context_in_budget", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_context_in_budget(cache_bytes_at, budget_bytes, weight_bytes):
    """Largest n >= 1 with weight_bytes + cache_bytes_at(n) <= budget_bytes; math.inf if the cache
    does not grow with n (and one token fits); 0 if not even one token fits."""
    if not callable(cache_bytes_at):
        raise TypeError(f"cache_bytes_at must be a function n -> bytes of the cache after n tokens; "
                        f"got {type(cache_bytes_at).__name__}")
    if budget_bytes < 0 or weight_bytes < 0:
        raise ValueError(f"budget_bytes and weight_bytes must be >= 0; got {budget_bytes}, {weight_bytes}")
    ### BEGIN SOLUTION
    one, two = cache_bytes_at(1), cache_bytes_at(2)     # the helpers start at n = 1
    if weight_bytes + one > budget_bytes:
        return 0                                         # not even one token fits
    per_token = two - one                                # keys and values of one more token
    if per_token == 0:
        return math.inf                                  # Mamba / RWKV: the state does not grow
    fixed = one - per_token                              # Mamba states of a hybrid, 0 for GPT-2
    return int((budget_bytes - weight_bytes - fixed) // per_token)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_max_context_in_budget", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""max_context_in_budget: hand-made caches (a budget filled exactly, one byte short, nothing fits, a
cache that does not grow) and a tiny Jamba's cache from archlab.models.cache_bytes, with named
mistakes; hidden: random caches and budgets against a brute-force search, every model family at two
sizes and batch sizes, and at most a few dozen calls of cache_bytes_at."""
def _affine(fixed, per_token):
    """A hand-made cache: fixed bytes plus per_token bytes for each token (n >= 1)."""
    def cache_bytes_at(n):
        if n < 1:
            raise ValueError(f"cache_bytes_at({n}): a cache helper needs n >= 1 (archlab.models.cache_bytes does)")
        return fixed + per_token * n
    return cache_bytes_at


# 1. A cache of 1,000 B plus 100 B a token, 500 B of weights, a budget of 2,200 B:
#    500 + 1,000 + 100·n <= 2,200 holds up to n = 7, which fills the budget exactly.
_v = max_context_in_budget(_affine(1000, 100), 2200, 500)
assert isinstance(_v, int), (f"return the number of tokens as an int (floor division //), or math.inf; "
                             f"got {type(_v).__name__} {_v!r}")
assert_close(_v, 7, name="longest context: 1,000 B + 100 B a token, 500 B of weights, a 2,200 B budget", mistakes={
    "the weights forgotten: the budget holds the weights AND the cache": 12,
    "the fixed part of the cache forgotten: it is fixed + n x per_token, and the fixed part (here "
    "1,000 B; a hybrid's Mamba states) is in the budget too": 17,
    "the bytes per token taken as cache_bytes_at(1), which holds the fixed part too: take the "
    "difference cache_bytes_at(2) - cache_bytes_at(1)": 1,
    "one past the end: n = 8 no longer fits (500 + 1,000 + 800 > 2,200); return the largest n that fits": 8,
    "a budget filled exactly still fits: the condition is <= budget, not <": 6})
# 2. One byte less: n = 7 no longer fits.
assert_close(max_context_in_budget(_affine(1000, 100), 2199, 500), 6, name="the same with a 2,199 B budget", mistakes={
    "rounded, not floored: n = 7 needs 2,200 B; use floor division //": 7})
# 3. Weights of 2,000 B leave 200 B: not even one token (1,000 + 100 B) fits.
_v = max_context_in_budget(_affine(1000, 100), 2200, 2000)
assert_close(_v, 0, name="the longest context when not even one token fits", mistakes={
    "-1 for 'nothing fits': this function returns 0 (no context fits)": -1,
    "a negative context: when not even n = 1 fits, return 0": (lambda v: v < 0)})
# 4. A cache that does not grow (a Mamba-like 5,000 B state): no context length is too long...
try:
    _v = max_context_in_budget(_affine(5000, 0), 10**9, 10**6)
except ZeroDivisionError:
    raise AssertionError("a cache that does not grow (per_token = 0, Mamba and RWKV): return math.inf "
                         "instead of dividing by zero") from None
assert _v == math.inf, f"a cache that does not grow with n fits at any length: expected math.inf, got {_v!r}"
# ...unless the state itself does not fit.
_v = max_context_in_budget(_affine(5000, 0), 5000, 1)
assert _v == 0, (f"5,000 B of state and 1 B of weights in a 5,000 B budget: not even one token fits, expected 0, "
                 f"got {_v!r}" + (": check that the state fits before returning math.inf" if _v == math.inf else ""))
# 5. A real cache: the tiny Jamba as transformers keeps it, in float32. Its one attention layer
#    keeps 2 (K, V) x 2 KV heads x 16 numbers x 4 B = 256 B a token; its 3 Mamba layers keep
#    3 x 128 channels x (4 + 16) x 4 B = 30,720 B. Weights of 10,000 B and a budget of
#    10,000 + 30,720 + 256 x 3 B: 3 tokens.
_jamba_tiny = models.make_config("jamba", "tiny")
_v = max_context_in_budget(lambda n: models.cache_bytes(_jamba_tiny, n, dtype=torch.float32),
                           10_000 + 30_720 + 256 * 3, 10_000)
assert_close(_v, 3, name="the tiny Jamba's longest context", mistakes={
    "the fixed part of the cache (the Mamba layers' states) forgotten: it is in the budget too": 123,
    "the weights forgotten: the budget holds the weights AND the cache": 42,
    "the bytes per token taken as cache_bytes_at(1), which holds the Mamba states too": 1})
### BEGIN HIDDEN TESTS
import random as _random


class _Counted:
    """cache_bytes_at with a call counter: an answer may call it a few dozen times at most."""

    def __init__(self, f, limit=64):
        self.f, self.calls, self.limit = f, 0, limit

    def __call__(self, n):
        self.calls += 1
        assert self.calls <= self.limit, (f"max_context_in_budget called cache_bytes_at more than {self.limit} times: "
                                          f"do not try every n; two calls give the fixed part and the bytes per token")
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"cache_bytes_at({n!r}): a cache helper needs an int n >= 1 "
                             "(archlab.models.cache_bytes does)")
        return self.f(n)


def _brute(f, budget, weights):
    """The answer by search: doubling, then bisection over n (independent of the affine shortcut)."""
    fits = lambda n: weights + f(n) <= budget
    if not fits(1):
        return 0
    if f(2) == f(1):
        return math.inf
    lo, hi = 1, 2
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


_rng = _random.Random(7)
_cases = []
for _trial in range(30):
    _fixed = _rng.choice([0, 0, _rng.randrange(1, 10**7)])
    _pt = _rng.choice([0, 1, 3, _rng.randrange(1, 10**6)])
    _w = _rng.randrange(0, 10**9)
    _budget = (_w + _fixed + _pt * _rng.choice([0, 1, 2, _rng.randrange(3, 10**7)])
               + _rng.choice([-1, 0, 0, 1, _pt // 2]))
    _cases.append((f"a cache of {_fixed:,} B + {_pt:,} B a token", (lambda fx, p: lambda n: fx + p * n)(_fixed, _pt),
                   max(_budget, 0), _w))
_cases.append(("a cache of 0 B + 1 B a token, 80 GB", lambda n: n, 80 * 10**9, 0))
for _fam in equal_size.FAMILIES:
    for _size in ("tiny", "base"):
        _cfg = models.make_config(_fam, _size)
        for _B in (1, 8):
            _f = (lambda c, b: lambda n: cost.predicted_state_bytes(c, n, b))(_cfg, _B)
            _per = _f(2) - _f(1)
            _w = _rng.randrange(0, 10**8)
            _cases += [(f"{_fam} {_size}, batch {_B}", _f, _w + _f(1) + _per * _rng.randrange(0, 10**6), _w),
                       (f"{_fam} {_size}, batch {_B}, nothing fits", _f, _w + _f(1) - 1, _w)]
for _label, _f, _budget, _w in _cases:
    _want = _brute(_f, _budget, _w)
    _got = max_context_in_budget(_Counted(_f), _budget, _w)
    assert _got == _want and (isinstance(_got, int) or _got == math.inf), (
        f"{_label}, weights {_w:,} B, budget {_budget:,} B: your answer {_got!r} is not the longest context that "
        f"fits (or 0 when none does, math.inf when the cache does not grow)")
### END HIDDEN TESTS

# %% [markdown]
# Now the equal-size models in a fixed budget (16 MiB in QUICK mode for the tiny models,
# 8 GiB for the GPT-2-small-sized ones: a laptop's free memory), in float32. `cache_bytes_at` is
# `archlab.models.cache_bytes` (transformers' own cache, measured on the meta device) for Mamba
# and Jamba; GPT-2 and RWKV do not run on the meta device, so for them it is the
# configuration's formula, `cost.predicted_state_bytes` (while grading, the formula for all
# four: it is instant). The peak memory of a prefill is measured too: activations, not the
# cache, are what a long *prompt* costs Mamba.

# %%
BUDGET = 16 * 2**20 if QUICK else 8 * 2**30
EQUAL = equal_size.build_equal_size(SIZE, max_context=max(CONTEXTS), seed=SEED, device=device)


def cache_helper(config):
    """n -> bytes of config's cache after n tokens, in float32, batch 1, from a library helper."""
    if GRADING or config.model_type in ("gpt2", "rwkv"):
        return lambda n: cost.predicted_state_bytes(config, n)
    return lambda n: models.cache_bytes(config, n, dtype=torch.float32)


BUDGET_ROWS = {}   # family -> longest context in the budget (filled by your max_context_in_budget)
n_peak = CONTEXTS[-1]
for fam, m in EQUAL.items():
    n_max = max_context_in_budget(cache_helper(m.config), BUDGET, cost.weight_bytes(m))
    BUDGET_ROWS[fam] = n_max
    print(f"{equal_size.LABELS[fam]:22s} weights {cost.weight_bytes(m) / 2**20:8.2f} MiB -> longest context in "
          f"{BUDGET / 2**20:.0f} MiB: {'unlimited by the cache' if n_max == math.inf else f'{n_max:,} tokens'}")
if GRADING:
    print("(peak memory not measured while grading)")
else:
    for fam in ("gpt2", "mamba"):
        ids = equal_size.random_ids(EQUAL[fam], 1, n_peak, device=device)
        _, peak = measure.peak_memory(lambda: equal_size.forward(EQUAL[fam], ids), device=device)
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
    ids = equal_size.random_ids(m, 1, n_peak + 2, device=device)
    _, cache = equal_size.forward(m, ids[:, :n_peak])
    _, cache = equal_size.forward(m, ids[:, n_peak:n_peak + 1], cache)  # warm-up step
    handles = label_parts(m)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        equal_size.forward(m, ids[:, n_peak + 1:n_peak + 2], cache)
    for h in handles:
        h.remove()
    parts = {e.key[len("part: "):]: e.cpu_time_total / 1e3 for e in prof.key_averages() if e.key.startswith("part: ")}
    total = sum(parts.values())
    PROFILE[fam] = parts
    print(f"{equal_size.LABELS[fam]}: " + ", ".join(f"{k} {v:.2f} ms ({v / total:.0%})"
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
BANDWIDTH = cost.memory_bandwidth(device, n_bytes=(8 if GRADING else 64 if QUICK else 512) * 2**20)
print(f"measured copy bandwidth: {BANDWIDTH / 1e9:.1f} GB/s")
ROOF = {}
for fam, m in EQUAL.items():
    n = CONTEXTS[-1]
    bytes_read = cost.active_weight_bytes(m) + cost.predicted_state_bytes(m.config, n)
    t_min = bytes_read / BANDWIDTH
    t_meas = time_decode(m, n)
    ROOF[fam] = dict(bytes=bytes_read, t_min=t_min, t=t_meas, fraction=t_min / t_meas)
    print(f"{equal_size.LABELS[fam]:22s} reads {bytes_read / 2**20:8.2f} MiB/token: bound {t_min * 1e3:7.3f} ms, "
          f"measured {t_meas * 1e3:7.2f} ms -> {t_min / t_meas:.1%} of the bandwidth bound")

# %% [markdown]
# The explorer below uses the bandwidth you just measured: move the context and the batch and
# see when the KV cache, not the weights, decides a Transformer's decode time (at batch B the
# weights are read once for all B sequences, each sequence reads its own cache).

# %%
if GRADING:
    print("(explorer not drawn while grading)")
else:
    roofline = widgets.roofline_explorer(BANDWIDTH, {f: m.config for f, m in EQUAL.items()},
                                         {f: cost.active_weight_bytes(m) for f, m in EQUAL.items()})
    display(roofline)

# %% [markdown]
# ## Conclusions, from the numbers above

# %%
n_last = CONTEXTS[-1]
g, mb = FAIR["gpt2"], FAIR["mamba"]
print(f"1. At equal size ({g['params']:,} vs {mb['params']:,} parameters), one cached decode step at n={n_last} "
      f"took {g['decode_s'][-1] * 1e3:.2f} ms (GPT-2) and {mb['decode_s'][-1] * 1e3:.2f} ms (Mamba): "
      f"ratio {g['decode_s'][-1] / mb['decode_s'][-1]:.2f}, not the reading's "
      f"{transformer_time / mamba_time:.1f}x from timing generate() against one block.")
print(f"2. GPT-2's decode time grew with n as n^{fits.fit_power_law(CONTEXTS, g['decode_s']).exponent:.2f}, "
      f"Mamba's as n^{fits.fit_power_law(CONTEXTS, mb['decode_s']).exponent:.2f} over n = {CONTEXTS[0]}..{n_last}.")
fmt = lambda v: "no cache limit" if v == math.inf else f"{v:,} tokens"
if len(BUDGET_ROWS) == len(EQUAL):
    print(f"3. In {BUDGET / 2**20:.0f} MiB: GPT-2 fits {fmt(BUDGET_ROWS['gpt2'])}, Jamba {fmt(BUDGET_ROWS['jamba'])}, "
          f"Mamba {fmt(BUDGET_ROWS['mamba'])}, RWKV {fmt(BUDGET_ROWS['rwkv'])}.")
else:
    print("3. (the memory budget needs your max_context_in_budget: see step 5a)")
print(f"4. The bandwidth bound explains {ROOF['gpt2']['fraction']:.1%} (GPT-2) and {ROOF['mamba']['fraction']:.1%} "
      f"(Mamba) of the measured decode time at this size: "
      + ("overhead, not memory traffic, dominates." if max(r['fraction'] for r in ROOF.values()) < 0.5
         else "memory traffic dominates."))

# %%
# Parity record (scripts/parity.py compares a CPU run with a CUDA run): under
# `python -m autograder execute` these numbers are written beside the executed notebook; otherwise nothing is.
from archlab.parity import save_record

save_record(globals(), device, exact=["BUDGET_ROWS"])
