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


WRONG = {
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
}
