"""Honest answers of 01_self_attention written independently of each other and of the model solution,
for the instructor's report (tests/reports/test_report_class.py): HONEST[exercise][label] is a correct
answer cell, each built a different way, so no two of them may look alike; NEAR[exercise] is one
answer and a copy of it with every variable renamed and a comment added, which must.
"""

HONEST = {"fit_scaling_exponent": {
    "polyfit": '''import numpy as np

def fit_scaling_exponent(lengths, costs):
    log_l = np.log(np.asarray(lengths, dtype=float))
    log_c = np.log(np.asarray(costs, dtype=float))
    slope, _ = np.polyfit(log_l, log_c, 1)
    return float(slope)
''',
    "lstsq": '''import numpy as np

def fit_scaling_exponent(lengths, costs):
    x = np.log([float(n) for n in lengths])
    design = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log([float(c) for c in costs]), rcond=None)
    return float(coef[0])
''',
    "statistics": '''import statistics

def fit_scaling_exponent(lengths, costs):
    logs_n = [math.log(n) for n in torch.as_tensor(lengths, dtype=torch.float64).tolist()]
    logs_t = [math.log(t) for t in torch.as_tensor(costs, dtype=torch.float64).tolist()]
    return float(statistics.linear_regression(logs_n, logs_t).slope)
''',
    "dot": '''import numpy as np

def fit_scaling_exponent(lengths, costs):
    a = np.log(np.asarray(lengths, dtype=np.float64))
    b = np.log(np.asarray(costs, dtype=np.float64))
    a0 = a - a.mean()
    return float(np.dot(a0, b - b.mean()) / np.dot(a0, a0))
''',
    "cov": '''import numpy as np

def fit_scaling_exponent(lengths, costs):
    pts = np.log(np.column_stack([np.asarray(lengths, float), np.asarray(costs, float)]))
    c = np.cov(pts, rowvar=False)
    return float(c[0, 1] / c[0, 0])
''',
}}

NEAR = {"fit_scaling_exponent": ('''def fit_scaling_exponent(lengths, costs):
    xs = [math.log(float(v)) for v in lengths]
    ys = [math.log(float(v)) for v in costs]
    n = len(xs)
    sx, sy = sum(xs), sum(ys)
    sxy = sum(a * b for a, b in zip(xs, ys))
    sxx = sum(a * a for a in xs)
    return (n * sxy - sx * sy) / (n * sxx - sx * sx)
''', '''def fit_scaling_exponent(lengths, costs):
    # least squares on the logs
    lx = [math.log(float(n)) for n in lengths]
    ly = [math.log(float(t)) for t in costs]
    m = len(lx)
    tot_x, tot_y = sum(lx), sum(ly)
    cross = sum(p * q for p, q in zip(lx, ly))
    squares = sum(p * p for p in lx)
    return (m * cross - tot_x * tot_y) / (m * squares - tot_x * tot_x)
''')}
