"""Plausible wrong answers for 05_comparison. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
"""

_PREFILL_HEAD = '''def measure_prefill(model, context_len, batch=1, device=None, warmup=1, repeat=3):
    check_measure_args(model, context_len, batch, warmup, repeat)
    ids = compare.random_ids(model, batch, context_len, seed=0, device=device or "cpu")
'''

_DECODE_HEAD = '''def measure_decode(model, context_len, n_tokens=4, batch=1, device=None, warmup=1):
    check_measure_args(model, context_len, batch, warmup, n_tokens)
    ids = compare.random_ids(model, batch, context_len + warmup + n_tokens, seed=1, device=device or "cpu")
'''

_STATE_HEAD = '''def state_bytes(model, context_len, batch=1, device=None):
    check_measure_args(model, context_len, batch, 0, 1)
    ids = compare.random_ids(model, batch, context_len, seed=2, device=device or "cpu")
'''

_FACTS_HEAD = '''def facts(meas):
    if set(meas) < {"contexts", "models"}:
        raise ValueError(f"meas needs the keys 'contexts' and 'models' (like MEAS); got {sorted(meas)}")
'''

WRONG = {
    "measure_prefill": {
        "no warm-up": _PREFILL_HEAD + '''
    times = []
    for _ in range(repeat):
        synchronize(device)
        start = time.perf_counter()
        compare.forward(model, ids)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
''',
        "no synchronisation": _PREFILL_HEAD + '''
    for _ in range(warmup):
        compare.forward(model, ids)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        compare.forward(model, ids)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
''',
        "mean over all runs, warm-up included": _PREFILL_HEAD + '''
    times = []
    for _ in range(warmup + repeat):
        synchronize(device)
        start = time.perf_counter()
        compare.forward(model, ids)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sum(times) / len(times)
''',
    },
    "measure_decode": {
        "cache turned off: the whole prefix recomputed each step": _DECODE_HEAD + '''
    compare.forward(model, ids[:, :context_len])
    pos = context_len
    for _ in range(warmup):
        compare.forward(model, ids[:, :pos + 1])
        pos += 1
    times = []
    for _ in range(n_tokens):
        synchronize(device)
        start = time.perf_counter()
        compare.forward(model, ids[:, :pos + 1])
        synchronize(device)
        times.append(time.perf_counter() - start)
        pos += 1
    return statistics.median(times)
''',
        "no warm-up steps": _DECODE_HEAD + '''
    _, cache = compare.forward(model, ids[:, :context_len])
    pos = context_len
    times = []
    for _ in range(n_tokens):
        synchronize(device)
        start = time.perf_counter()
        _, cache = compare.forward(model, ids[:, pos:pos + 1], cache)
        synchronize(device)
        times.append(time.perf_counter() - start)
        pos += 1
    return statistics.median(times)
''',
        "total time of all steps, not per token": _DECODE_HEAD + '''
    _, cache = compare.forward(model, ids[:, :context_len])
    pos = context_len
    for _ in range(warmup):
        _, cache = compare.forward(model, ids[:, pos:pos + 1], cache)
        pos += 1
    total = 0.0
    for _ in range(n_tokens):
        synchronize(device)
        start = time.perf_counter()
        _, cache = compare.forward(model, ids[:, pos:pos + 1], cache)
        synchronize(device)
        total += time.perf_counter() - start
        pos += 1
    return total
''',
        "no synchronisation": _DECODE_HEAD + '''
    _, cache = compare.forward(model, ids[:, :context_len])
    pos = context_len
    for _ in range(warmup):
        _, cache = compare.forward(model, ids[:, pos:pos + 1], cache)
        pos += 1
    times = []
    for _ in range(n_tokens):
        start = time.perf_counter()
        _, cache = compare.forward(model, ids[:, pos:pos + 1], cache)
        times.append(time.perf_counter() - start)
        pos += 1
    return statistics.median(times)
''',
    },
    "state_bytes": {
        "counts the parameters instead of the cache": _STATE_HEAD + '''
    return int(sum(p.numel() * p.element_size() for p in model.parameters()))
''',
        "counts values, not bytes": _STATE_HEAD + '''
    _, cache = compare.forward(model, ids)
    return int(tensor_bytes(cache) // 4)
''',
        "counts the logits too": _STATE_HEAD + '''
    logits, cache = compare.forward(model, ids)
    return int(tensor_bytes((logits, cache)))
''',
    },
    "facts": {
        "decode exponent fitted on the prefill times": _FACTS_HEAD + '''
    n, rows = meas["contexts"], meas["models"]
    return {
        "gpt2_kv_exponent": compare.fit_exponent(n, rows["gpt2"]["state_bytes"]),
        "gpt2_decode_exponent": compare.fit_exponent(n, rows["gpt2"]["prefill_s"]),
        "mamba_state_exponent": compare.fit_exponent(n, rows["mamba"]["state_bytes"]),
        "flat_state_models": sorted(f for f, r in rows.items() if abs(compare.fit_exponent(n, r["state_bytes"])) < 0.05),
        "fastest_decode_at_longest": min(rows, key=lambda f: rows[f]["decode_s"][-1]),
    }
''',
        "every non-Transformer counted as flat": _FACTS_HEAD + '''
    n, rows = meas["contexts"], meas["models"]
    return {
        "gpt2_kv_exponent": compare.fit_exponent(n, rows["gpt2"]["state_bytes"]),
        "gpt2_decode_exponent": compare.fit_exponent(n, rows["gpt2"]["decode_s"]),
        "mamba_state_exponent": compare.fit_exponent(n, rows["mamba"]["state_bytes"]),
        "flat_state_models": sorted(f for f in rows if f != "gpt2"),
        "fastest_decode_at_longest": min(rows, key=lambda f: rows[f]["decode_s"][-1]),
    }
''',
        "typed-in theory and a favourite instead of the data": _FACTS_HEAD + '''
    return {"gpt2_kv_exponent": 1.0, "gpt2_decode_exponent": 1.0, "mamba_state_exponent": 0.0,
            "flat_state_models": ["mamba", "rwkv"], "fastest_decode_at_longest": "mamba"}
''',
        "slope on linear axes, fastest on average": _FACTS_HEAD + '''
    import numpy as np
    n, rows = meas["contexts"], meas["models"]
    lin = lambda ys: float(np.polyfit(n, ys, 1)[0])
    return {
        "gpt2_kv_exponent": compare.fit_exponent(n, rows["gpt2"]["state_bytes"]),
        "gpt2_decode_exponent": lin(rows["gpt2"]["decode_s"]),
        "mamba_state_exponent": compare.fit_exponent(n, rows["mamba"]["state_bytes"]),
        "flat_state_models": sorted(f for f, r in rows.items() if abs(compare.fit_exponent(n, r["state_bytes"])) < 0.05),
        "fastest_decode_at_longest": min(rows, key=lambda f: sum(rows[f]["decode_s"])),
    }
''',
    },
}
