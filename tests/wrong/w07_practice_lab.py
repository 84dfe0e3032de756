"""Plausible wrong answers for 07_practice_lab. Each must lose its exercise's points.

WRONG[answer grade_id][label] is a whole answer cell, as a student might submit it.
"""

_HEAD = '''def max_context_in_budget(config, budget_bytes, weight_bytes, batch=1, bytes_per_value=4):
    if budget_bytes < 0 or weight_bytes < 0:
        raise ValueError(f"budget_bytes and weight_bytes must be >= 0; got {budget_bytes}, {weight_bytes}")
'''

WRONG = {
    "max_context_in_budget": {
        "forgets the weights": _HEAD + '''
    per_token = compare.predicted_state_bytes(config, 1, batch, bytes_per_value) - compare.predicted_state_bytes(config, 0, batch, bytes_per_value)
    if per_token == 0:
        return math.inf
    return int((budget_bytes - compare.predicted_state_bytes(config, 0, batch, bytes_per_value)) // per_token)
''',
        "first n that does not fit (off by one)": _HEAD + '''
    cache = lambda n: compare.predicted_state_bytes(config, n, batch, bytes_per_value)
    if weight_bytes + cache(0) > budget_bytes:
        return -1
    per_token = cache(1) - cache(0)
    if per_token == 0:
        return math.inf
    return int((budget_bytes - weight_bytes - cache(0)) // per_token) + 1
''',
        "KV-cache formula for every family (Mamba gets a finite limit)": _HEAD + '''
    if weight_bytes > budget_bytes:
        return -1
    cfg = config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    width = getattr(cfg, "hidden_size", None) or cfg.n_embd
    per_token = 2 * layers * width * batch * bytes_per_value
    return int((budget_bytes - weight_bytes) // per_token)
''',
    },
}
