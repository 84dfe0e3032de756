"""Plausible wrong answers for 07_practice_lab. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it: a dict with
"visible": the keyword its visible test's message must contain (a typical mistake, named before
grading), or "hidden": what the hidden tests' message must contain (a subtle mistake that passes
the visible tests). See tests/nbtools.py:wrong_answers. The first "visible" and the first
"hidden" entry of each exercise are what tests/grading/test_autograde.py submits.
"""

_HEAD = '''def max_context_in_budget(cache_bytes_at, budget_bytes, weight_bytes):
    if not callable(cache_bytes_at):
        raise TypeError("cache_bytes_at must be a function")
    if budget_bytes < 0 or weight_bytes < 0:
        raise ValueError(f"budget_bytes and weight_bytes must be >= 0; got {budget_bytes}, {weight_bytes}")
'''


def _budget(weights="weight_bytes", fixed="one - per_token", per_token="two - one", result="int(room // per_token)",
            nothing="0"):
    """A max_context_in_budget with one thing changed."""
    return _HEAD + f'''
    one, two = cache_bytes_at(1), cache_bytes_at(2)
    if weight_bytes + one > budget_bytes:
        return {nothing}
    per_token = {per_token}
    if per_token == 0:
        return math.inf
    fixed = {fixed}
    room = budget_bytes - {weights} - fixed
    return {result}
'''



# compare_fairly as a student might write it: the timing loop by hand (the solution uses measure.time_fn).
_FAIR = """def compare_fairly(transformer, mamba, context_len, device=None, warmup=1, repeat=5, seed=0):
    check_compare_args(transformer, mamba, context_len, warmup, repeat)
    sizes = {"transformer": models.n_parameters(transformer), "mamba": models.n_parameters(mamba)}
    if max(sizes.values()) > MAX_SIZE_RATIO * min(sizes.values()):
        raise ValueError(f"unequal sizes: {sizes}")
    if transformer.dtype != mamba.dtype:
        raise ValueError(f"different dtypes: {transformer.dtype}, {mamba.dtype}")
    ids = equal_size.random_ids(transformer, 1, context_len + 1, seed=seed, device=device or "cpu")
    prompt, token = ids[:, :context_len], ids[:, context_len:]

    def timed(call):
        for _ in range(warmup):
            call()
        times = []
        for _ in range(repeat):
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    result = {}
    for name, model in (("transformer", transformer), ("mamba", mamba)):
        prefill_s = timed(lambda: equal_size.forward(model, prompt))
        _, cache = equal_size.forward(model, prompt)
        decode_s = timed(lambda: equal_size.forward(model, token, cache))
        result[name] = {"params": sizes[name], "prefill_s": prefill_s, "decode_s": decode_s}
    return result
"""


def _fair(*changes):
    """compare_fairly with each (old, new) of changes replaced once (old must be there)."""
    code = _FAIR
    for old, new in changes:
        assert old in code, old
        code = code.replace(old, new, 1)
    return code


_WARMUP = "        for _ in range(warmup):\n            call()\n"
_SYNC_START = "            synchronize(device)\n            start"
_SYNC_STOP = "            call()\n            synchronize(device)\n"


_RIGHT = {"transformer_params": 'FAIR["gpt2"]["params"]', "mamba_params": 'FAIR["mamba"]["params"]',
          "step4_size_ratio": "gpt2_small_params / block_768_params",
          "gpt2_longest_context": 'BUDGET_ROWS["gpt2"]', "jamba_longest_context": 'BUDGET_ROWS["jamba"]',
          "transformer_decode_ms": 'FAIR["gpt2"]["decode_s"][-1] * 1e3',
          "mamba_decode_ms": 'FAIR["mamba"]["decode_s"][-1] * 1e3'}


def _conclusions(**changes):
    """q_conclusions read from the run's variables, with some entries replaced by other expressions."""
    entries = "".join(f"    {k!r}: {changes.get(k, v)},\n" for k, v in _RIGHT.items())
    return "q_conclusions = {\n" + entries + "}\n"


_TOP_PART = 'q_profile_top_part = {f: max(PROFILE[f], key=PROFILE[f].get) for f in ("gpt2", "jamba")}'


WRONG = {
    "compare_fairly": {
        "no warm-up": {"visible": "warm-up", "code": _fair((_WARMUP, ""))},
        "the warm-up timed with the rest": {"visible": "the warm-up was timed", "code": _fair(
            (_WARMUP, ""), ("for _ in range(repeat):", "for _ in range(warmup + repeat):"))},
        "no synchronisation": {"visible": "no synchronisation", "code": _fair(
            (_SYNC_START, "            start"), (_SYNC_STOP, "            call()\n"))},
        "no synchronize before starting the clock": {"visible": "before starting the clock", "code": _fair(
            (_SYNC_START, "            start"))},
        "time_fn without the device": {"visible": "no synchronisation", "code": """def compare_fairly(transformer, mamba, context_len, device=None, warmup=1, repeat=5, seed=0):
    check_compare_args(transformer, mamba, context_len, warmup, repeat)
    sizes = {"transformer": models.n_parameters(transformer), "mamba": models.n_parameters(mamba)}
    if max(sizes.values()) > MAX_SIZE_RATIO * min(sizes.values()):
        raise ValueError("unequal sizes")
    if transformer.dtype != mamba.dtype:
        raise ValueError("different dtypes")
    ids = equal_size.random_ids(transformer, 1, context_len + 1, seed=seed, device=device or "cpu")
    prompt, token = ids[:, :context_len], ids[:, context_len:]
    result = {}
    for name, model in (("transformer", transformer), ("mamba", mamba)):
        prefill = measure.time_fn(lambda: equal_size.forward(model, prompt), warmup=warmup, repeat=repeat)
        _, cache = equal_size.forward(model, prompt)
        step = measure.time_fn(lambda: equal_size.forward(model, token, cache), warmup=warmup, repeat=repeat)
        result[name] = {"params": sizes[name], "prefill_s": prefill.median, "decode_s": step.median}
    return result
"""},
        "a mean instead of the median": {"visible": "a mean instead of the median", "code": _fair(
            ("statistics.median(times)", "statistics.mean(times)"))},
        "the minimum instead of the median": {"visible": "the minimum instead of the median", "code": _fair(
            ("statistics.median(times)", "min(times)"))},
        "unequal sizes not refused": {"visible": "unequal sizes", "code": _fair(
            ('    if max(sizes.values()) > MAX_SIZE_RATIO * min(sizes.values()):\n        raise ValueError(f"unequal sizes: {sizes}")\n', ""))},
        "different dtypes not refused": {"visible": "different dtypes", "code": _fair(
            ('    if transformer.dtype != mamba.dtype:\n        raise ValueError(f"different dtypes: {transformer.dtype}, {mamba.dtype}")\n', ""))},
        "different tokens for each model": {"visible": "different tokens", "code": _fair(
            ('        prefill_s = timed(', '        ids = equal_size.random_ids(model, 1, context_len + 1, seed=seed + len(result), device=device or "cpu")\n        prompt, token = ids[:, :context_len], ids[:, context_len:]\n        prefill_s = timed('))},
        "the Mamba fed one token too many": {"visible": "different token counts", "code": _fair(
            ('        prefill_s = timed(', '        if name == "mamba":\n            prompt = ids\n        prefill_s = timed('))},
        "decode without the cache": {"visible": "decode without the cache", "code": _fair(
            ("timed(lambda: equal_size.forward(model, token, cache))", "timed(lambda: equal_size.forward(model, ids))"))},
        "warmup and repeat ignored": {"hidden": "use the arguments", "code": _fair(
            ("for _ in range(warmup):", "for _ in range(1):"), ("for _ in range(repeat):", "for _ in range(5):"))},
        "sizes compared one way only": {"hidden": "whichever it is", "code": _fair(
            ("if max(sizes.values()) > MAX_SIZE_RATIO * min(sizes.values()):",
             'if sizes["transformer"] > MAX_SIZE_RATIO * sizes["mamba"]:'))},
        "25 % of the larger": {"hidden": "MAX_SIZE_RATIO times", "code": _fair(
            ("if max(sizes.values()) > MAX_SIZE_RATIO * min(sizes.values()):",
             'if abs(sizes["transformer"] - sizes["mamba"]) > 0.25 * max(sizes.values()):'))},
        "the seed ignored": {"hidden": "seed=", "code": _fair(("seed=seed, device=", "seed=0, device="))},
    },
    "max_context_in_budget": {
        "the weights forgotten": {"visible": "the weights forgotten", "code": _budget(weights="0")},
        "the fixed part of the cache forgotten": {"visible": "fixed part of the cache forgotten", "code": _budget(fixed="0")},
        "bytes per token = cache_bytes_at(1)": {"visible": "cache_bytes_at(1)", "code": _budget(per_token="one", fixed="0")},
        "first n that does not fit (off by one)": {"visible": "one past the end", "code": _budget(result="int(room // per_token) + 1")},
        "a full budget rejected (< instead of <=)": {"visible": "not <", "code": _budget(result="int((room - 1) // per_token)")},
        "a float number of tokens": {"visible": "as an int", "code": _budget(result="room / per_token")},
        "-1 when nothing fits": {"visible": "returns 0", "code": _budget(nothing="-1")},
        "divides by zero for a state that does not grow": {"visible": "dividing by zero", "code": _HEAD + '''
    one, two = cache_bytes_at(1), cache_bytes_at(2)
    per_token = two - one
    fixed = one - per_token
    return max(0, int((budget_bytes - weight_bytes - fixed) // per_token))
'''},
        "the fixed part from cache_bytes_at(0)": {"visible": "n >= 1", "code": _HEAD + '''
    fixed, one = cache_bytes_at(0), cache_bytes_at(1)
    if weight_bytes + one > budget_bytes:
        return 0
    per_token = one - fixed
    if per_token == 0:
        return math.inf
    return int((budget_bytes - weight_bytes - fixed) // per_token)
'''},
        "math.inf before checking that the state fits": {"visible": "check that the state fits", "code": _HEAD + '''
    one, two = cache_bytes_at(1), cache_bytes_at(2)
    per_token = two - one
    if per_token == 0:
        return math.inf
    if weight_bytes + one > budget_bytes:
        return 0
    return int((budget_bytes - weight_bytes - (one - per_token)) // per_token)
'''},
        "tries every n": {"hidden": "do not try every n", "code": _HEAD + '''
    if weight_bytes + cache_bytes_at(1) > budget_bytes:
        return 0
    if cache_bytes_at(2) == cache_bytes_at(1):
        return math.inf
    n = 1
    while weight_bytes + cache_bytes_at(n + 1) <= budget_bytes:
        n += 1
    return n
'''},
    },
    "q_profile_top_part": {
        "operator names": {"visible": "not an operator", "code": 'q_profile_top_part = {"gpt2": "aten::addmm", "jamba": "aten::mm"}\n'},
        "the modules' names, not the parts'": {"visible": "not a part", "code": 'q_profile_top_part = {"gpt2": "attn", "jamba": "self_attn"}\n'},
        "a list": {"visible": "is a dict", "code": 'q_profile_top_part = ["attention", "mamba"]\n'},
        "the part with the most parameters": {"hidden": "largest share", "code": """q_profile_top_part = {}
for _fam in ("gpt2", "jamba"):
    _w = part_params(PROFILED[_fam])
    q_profile_top_part[_fam] = max(_w, key=_w.get)
"""},
        "Jamba's attention, as in a Transformer": {"hidden": "largest share", "code": """q_profile_top_part = {"gpt2": max(PROFILE["gpt2"], key=PROFILE["gpt2"].get), "jamba": "attention"}
"""},
        "the parameter shares as percentages": {"visible": "looks like a percentage", "code": _TOP_PART + """
q_profile_top_params = {f: 100 * part_params(PROFILED[f])[q_profile_top_part[f]] / models.n_parameters(PROFILED[f])
                        for f in ("gpt2", "jamba")}
"""},
        "the top part's share of the time for its share of the parameters": {
            "hidden": "share of the time", "mistake": "time-share-for-parameters", "code": _TOP_PART + """
q_profile_top_params = {f: PROFILE[f][q_profile_top_part[f]] / sum(PROFILE[f].values()) for f in ("gpt2", "jamba")}
"""},
        "the share among the labelled parts only": {
            "hidden": "is not the share of the model's parameters", "mistake": "parameter-share-miscounted",
            "code": _TOP_PART + """
q_profile_top_params = {f: part_params(PROFILED[f])[q_profile_top_part[f]] / sum(part_params(PROFILED[f]).values())
                        for f in ("gpt2", "jamba")}
"""},
    },
    "q_conclusions": {
        "GPT-2 small's count for the GPT-2 timed": {"visible": "GPT-2 small's count", "code": _conclusions(
            transformer_params="gpt2_small_params")},
        "the reading's 150M": {"visible": "150M", "code": _conclusions(transformer_params="150_000_000")},
        "one block for the Mamba": {"visible": "width-768 block", "code": _conclusions(mamba_params="block_768_params")},
        "the size ratio upside down": {"visible": "upside down", "code": _conclusions(
            step4_size_ratio="block_768_params / gpt2_small_params")},
        "the budgets swapped": {"visible": "gpt2_longest_context is GPT-2's", "code": _conclusions(
            gpt2_longest_context='BUDGET_ROWS["jamba"]', jamba_longest_context='BUDGET_ROWS["gpt2"]')},
        "numbers as strings": {"visible": "positive, finite number", "code": _conclusions(
            transformer_params='f"{FAIR[\'gpt2\'][\'params\']:,}"')},
        "Mamba's unlimited context for GPT-2's": {"visible": "positive, finite number", "code": _conclusions(
            gpt2_longest_context="math.inf")},
        "rounded to two significant digits": {"hidden": "three significant digits", "code": _conclusions(
            **{k: f"float(f'{{{v}:.2g}}')" for k, v in _RIGHT.items()})},
    },
}
