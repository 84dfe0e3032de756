"""Plausible wrong answers for 05_comparison. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers. The first "visible" and the first
"hidden" entry of each exercise are what tests/grading/test_autograde.py submits.
"""

_PREFILL_HEAD = '''def measure_prefill(model, context_len, batch=1, device=None, warmup=1, repeat=3):
    check_measure_args(model, context_len, batch, warmup, repeat)
    ids = equal_size.random_ids(model, batch, context_len, seed=0, device=device or "cpu")
'''


def _prefill(warmup_loop="range(warmup)", timed_loop="range(repeat)", sync_before=True, sync_after=True,
             result="statistics.median(times)"):
    """A measure_prefill with one thing changed."""
    return _PREFILL_HEAD + f'''
    for _ in {warmup_loop}:
        equal_size.forward(model, ids)
    times = []
    for _ in {timed_loop}:
        {"synchronize(device)" if sync_before else "pass"}
        start = time.perf_counter()
        equal_size.forward(model, ids)
        {"synchronize(device)" if sync_after else "pass"}
        times.append(time.perf_counter() - start)
    return {result}
'''


_DECODE_HEAD = '''def measure_decode(model, context_len, n_tokens=4, batch=1, device=None, warmup=1):
    check_measure_args(model, context_len, batch, warmup, n_tokens)
    ids = equal_size.random_ids(model, batch, context_len + warmup + n_tokens, seed=1, device=device or "cpu")
'''


def _decode(warmup_loop="range(warmup)", timed_loop="range(n_tokens)", sync_before=True, sync_after=True,
            result="statistics.median(times)"):
    """A measure_decode with one thing changed."""
    return _DECODE_HEAD + f'''
    _, cache = equal_size.forward(model, ids[:, :context_len])
    pos = context_len
    for _ in {warmup_loop}:
        _, cache = equal_size.forward(model, ids[:, pos:pos + 1], cache)
        pos += 1
    times = []
    for _ in {timed_loop}:
        {"synchronize(device)" if sync_before else "pass"}
        start = time.perf_counter()
        _, cache = equal_size.forward(model, ids[:, pos:pos + 1], cache)
        {"synchronize(device)" if sync_after else "pass"}
        times.append(time.perf_counter() - start)
        pos += 1
    return {result}
'''


_STATE_HEAD = '''def state_bytes(model, context_len, batch=1, device=None):
    check_measure_args(model, context_len, batch, 0, 1)
    ids = equal_size.random_ids(model, batch, context_len, seed=2, device=device or "cpu")
'''

_FACTS_HEAD = '''def facts(meas):
    if set(meas) < {"contexts", "models"}:
        raise ValueError(f"meas needs the keys 'contexts' and 'models' (like MEAS); got {sorted(meas)}")
    n, rows = meas["contexts"], meas["models"]
'''


def _facts(kv='fits.fit_power_law(n, rows["gpt2"]["state_bytes"]).exponent',
           decode='fits.fit_power_law(n, rows["gpt2"]["decode_s"]).exponent',
           flat='sorted(f for f, r in rows.items() if abs(fits.fit_power_law(n, r["state_bytes"]).exponent) < 0.05)',
           fastest='min(rows, key=lambda f: rows[f]["decode_s"][-1])', before=""):
    """A facts with one thing changed."""
    return _FACTS_HEAD + before + f'''
    return {{
        "gpt2_kv_exponent": {kv},
        "gpt2_decode_exponent": {decode},
        "mamba_state_exponent": fits.fit_power_law(n, rows["mamba"]["state_bytes"]).exponent,
        "flat_state_models": {flat},
        "fastest_decode_at_longest": {fastest},
    }}
'''


_CLAIMS = {"mamba_5x": ("throughput", "large batch", False), "jamba_3x": ("throughput", "batch 1", False),
           "gpt2_decode": ("latency", "batch 1", True), "mamba_state": ("memory", "batch 1", True)}


def _claims(**changed):
    """A q_claims cell with some claims changed: changed[claim] = (quantity, batch, testable_here)."""
    rows = {**_CLAIMS, **changed}
    body = ",\n".join(f'    "{c}": {{"quantity": {q!r}, "batch": {b!r}, "testable_here": {t!r}}}'
                       for c, (q, b, t) in rows.items())
    return "q_claims = {\n" + body + ",\n}\n"


WRONG = {
    "measure_prefill": {
        "no synchronisation": {"visible": "no synchronisation",
                               "code": _prefill(sync_before=False, sync_after=False)},
        "the warm-up timed with the rest": {"visible": "warm-up was timed",
                                            "code": _prefill(warmup_loop="[]", timed_loop="range(warmup + repeat)")},
        "mean instead of median": {"visible": "mean instead of the median", "code": _prefill(result="sum(times) / len(times)")},
        "sum of the runs": {"visible": "sum of the timed runs", "code": _prefill(result="sum(times)")},
        "no warm-up": {"visible": "warm-up missing", "code": _prefill(warmup_loop="[]")},
        "no synchronize before starting the clock": {"visible": "no synchronize before starting",
                                                     "code": _prefill(sync_before=False)},
        "the batch ignored: one sequence of its own": {"visible": "ignores the batch", "code": _PREFILL_HEAD + '''
    ids = equal_size.random_ids(model, 1, context_len, seed=0, device=device or "cpu")
    for _ in range(warmup):
        equal_size.forward(model, ids)
    times = []
    for _ in range(repeat):
        synchronize(device)
        start = time.perf_counter()
        equal_size.forward(model, ids)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
'''},
        "archlab.measure.time_fn does the timing": {"hidden": "must be your own code", "code": _PREFILL_HEAD + '''
    from archlab.measure import time_fn
    return time_fn(lambda: equal_size.forward(model, ids), warmup=warmup, repeat=repeat, device=device).median
'''},
        "the standard library's timeit does the timing": {"hidden": "must be your own code", "code": _PREFILL_HEAD + '''
    import timeit

    def clock():
        synchronize(device)
        return time.perf_counter()

    timer = timeit.Timer(lambda: equal_size.forward(model, ids), timer=clock)
    if warmup:
        timer.timeit(number=warmup)
    return statistics.median(timer.repeat(repeat=repeat, number=1))
'''},
        "warmup and repeat fixed at their defaults": {"hidden": "use the warmup and repeat arguments",
                                                      "code": _prefill(warmup_loop="range(1)", timed_loop="range(3)")},
        "the fastest run instead of the median": {"hidden": "not the median", "code": _prefill(result="min(times)")},
    },
    "measure_decode": {
        "cache turned off: the whole prefix recomputed each step": {"visible": "without the cache", "code": _DECODE_HEAD + '''
    equal_size.forward(model, ids[:, :context_len])
    pos = context_len
    for _ in range(warmup):
        equal_size.forward(model, ids[:, :pos + 1])
        pos += 1
    times = []
    for _ in range(n_tokens):
        synchronize(device)
        start = time.perf_counter()
        equal_size.forward(model, ids[:, :pos + 1])
        synchronize(device)
        times.append(time.perf_counter() - start)
        pos += 1
    return statistics.median(times)
'''},
        "no synchronisation": {"visible": "no synchronisation", "code": _decode(sync_before=False, sync_after=False)},
        "the warm-up step timed with the rest": {"visible": "warm-up step was timed", "code": _DECODE_HEAD + '''
    _, cache = equal_size.forward(model, ids[:, :context_len])
    pos = context_len
    times = []
    for _ in range(warmup + n_tokens):
        synchronize(device)
        start = time.perf_counter()
        _, cache = equal_size.forward(model, ids[:, pos:pos + 1], cache)
        synchronize(device)
        times.append(time.perf_counter() - start)
        pos += 1
    return statistics.median(times)
'''},
        "mean instead of median": {"visible": "mean instead of the median", "code": _decode(result="sum(times) / len(times)")},
        "total time of all steps, not per token": {"visible": "sum of the timed steps", "code": _decode(result="sum(times)")},
        "no warm-up steps": {"visible": "warm-up step missing", "code": _decode(warmup_loop="[]")},
        "no synchronize before starting the clock": {"visible": "no synchronize before starting",
                                                     "code": _decode(sync_before=False)},
        "archlab.measure.time_fn times each step": {"hidden": "must be your own code", "code": _DECODE_HEAD + '''
    from archlab.measure import time_fn
    _, cache = equal_size.forward(model, ids[:, :context_len])
    pos = [context_len]

    def step():
        nonlocal cache
        _, cache = equal_size.forward(model, ids[:, pos[0]:pos[0] + 1], cache)
        pos[0] += 1

    return time_fn(step, warmup=warmup, repeat=n_tokens, device=device).median
'''},
        "the fastest step instead of the median": {"visible": "took the fastest step, not the median",
                                                   "code": _decode(result="min(times)")},
        "always one warm-up step": {"hidden": "use the arguments", "code": _decode(warmup_loop="range(1)")},
    },
    "state_bytes": {
        "counts the parameters instead of the cache": {"visible": "weights counted", "code": _STATE_HEAD + '''
    return int(sum(p.numel() * p.element_size() for p in model.parameters()))
'''},
        "counts the logits too": {"visible": "logits counted too", "code": _STATE_HEAD + '''
    logits, cache = equal_size.forward(model, ids)
    return int(tensor_bytes((logits, cache)))
'''},
        "counts values, not bytes": {"visible": "values counted, not bytes", "code": _STATE_HEAD + '''
    _, cache = equal_size.forward(model, ids)
    return int(tensor_bytes(cache) // 4)
'''},
        "a KV-cache formula for every model": {"visible": "kv-cache formula", "code": _STATE_HEAD + '''
    cfg = model.config
    layers = getattr(cfg, "n_layer", None) or cfg.num_hidden_layers
    width = getattr(cfg, "n_embd", None) or cfg.hidden_size
    return 2 * layers * batch * context_len * width * 4
'''},
        "batch ignored": {"visible": "batch ignored", "code": _STATE_HEAD + '''
    _, cache = equal_size.forward(model, ids[:1])
    return int(tensor_bytes(cache))
'''},
        "the configuration's formula instead of a measurement": {"hidden": "must be your own code", "code": _STATE_HEAD + '''
    return cost.predicted_state_bytes(model.config, context_len, batch, bytes_per_value=4)
'''},
        "4 bytes a value assumed": {"hidden": "bfloat16", "code": _STATE_HEAD + '''
    _, cache = equal_size.forward(model, ids)
    seen = set()

    def values(obj):
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            return obj.numel()
        if isinstance(obj, (list, tuple)):
            return sum(values(x) for x in obj)
        if isinstance(obj, dict):
            return sum(values(x) for x in obj.values())
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            return sum(values(x) for x in vars(obj).values())
        return 0

    return 4 * values(cache)   # float32: 4 bytes a value
'''},
    },
    "facts": {
        "decode exponent fitted on the prefill times": {"visible": "prefill",
                                                        "code": _facts(decode='fits.fit_power_law(n, rows["gpt2"]["prefill_s"]).exponent')},
        "the theory typed in instead of the data": {"visible": "1.0 is not what these decode times show", "code": _FACTS_HEAD + '''
    return {"gpt2_kv_exponent": 1.0, "gpt2_decode_exponent": 1.0, "mamba_state_exponent": 0.0,
            "flat_state_models": ["mamba", "rwkv"], "fastest_decode_at_longest": "mamba"}
'''},
        "every non-Transformer counted as flat": {"visible": "Jamba's cache grows",
                                                  "code": _facts(flat='sorted(f for f in rows if f != "gpt2")')},
        "fastest on average": {"visible": "not at the LONGEST",
                               "code": _facts(fastest='min(rows, key=lambda f: sum(rows[f]["decode_s"]))')},
        "slope on linear axes": {"visible": "linear axes", "code": _facts(
            before="    import numpy as np\n    lin = lambda ys: float(np.polyfit(n, ys, 1)[0])\n",
            decode='lin(rows["gpt2"]["decode_s"])')},
        "an unsorted list": {"visible": "SORTED", "code": _facts(
            flat='sorted((f for f, r in rows.items() if abs(fits.fit_power_law(n, r["state_bytes"]).exponent) < 0.05), reverse=True)')},
        "slope through the first and last points only": {"hidden": "through ALL the points", "code": _facts(
            before="    import math\n    ends = lambda ys: (math.log(ys[-1]) - math.log(ys[0])) / (math.log(n[-1]) - math.log(n[0]))\n",
            kv='ends(rows["gpt2"]["state_bytes"])', decode='ends(rows["gpt2"]["decode_s"])')},
    },
    "q_claims": {
        "Mamba's 5x read as the latency of one sequence, testable with our batch-1 decode":
            {"visible": "throughput claim read as latency", "code": _claims(mamba_5x=("latency", "batch 1", True))},
        "our decode seconds read as a throughput": {"visible": "latency read as throughput",
                                                    "code": _claims(gpt2_decode=("throughput", "batch 1", True))},
        "testable_here as a word": {"visible": "must be True or False",
                                    "code": _claims(mamba_5x=("throughput", "large batch", "no"))},
        "a claim left out": {"visible": "must be a dict with the keys",
                             "code": "q_claims = {'mamba_5x': {'quantity': 'throughput', 'batch': 'large batch', "
                                     "'testable_here': False}}\n"},
        "Jamba's long-context 3x taken from the large-batch setting (a)": {
            "hidden": "not the setting the claimed figure comes from", "mistake": "jamba-3x-batch",
            "code": _claims(jamba_3x=("throughput", "large batch", False))},
        "Mamba's 5x judged testable by our GPT-2/Mamba decode ratio": {
            "hidden": "does MEAS hold this quantity", "mistake": "mamba-5x-testable-here",
            "code": _claims(mamba_5x=("throughput", "large batch", True))},
        "Mamba's 5x read as a batch-1 throughput": {
            "hidden": "not the setting the claimed figure comes from", "mistake": "mamba-5x-batch",
            "code": _claims(mamba_5x=("throughput", "batch 1", False))},
        "Jamba's batch-1 3x read as latency": {
            "hidden": "is not what the number behind this claim measures", "mistake": "jamba-3x-quantity",
            "code": _claims(jamba_3x=("latency", "batch 1", False))},
        "Jamba's 3x judged testable because we measured a Jamba": {
            "hidden": "does MEAS hold this quantity", "mistake": "jamba-3x-testable-here",
            "code": _claims(jamba_3x=("throughput", "batch 1", True))},
        "our state bytes judged untestable": {
            "hidden": "does MEAS hold this quantity", "mistake": "mamba-state-testable-here",
            "code": _claims(mamba_state=("memory", "batch 1", False))},
    },
}
