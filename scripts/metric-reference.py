#!/usr/bin/env python3
"""Writes Tests/ThemisBenchTests/Fixtures/metric-reference.json: the meta-evaluation's statistics
computed by scipy / numpy on fixed vectors, the outside reference of MetaEvalTests.

usage: scripts/metric-reference.py   (needs numpy and scipy)
A statistic scipy returns as NaN (a constant series) is written as null.
"""
import json, math, os, random
import numpy as np
from scipy import stats

rng = random.Random(7)
cases = {
    "ties": ([1, 2, 2, 3, 4, 5, 5, 5, 3, 1], [1, 3, 2, 3, 5, 4, 5, 3, 2, 2]),
    "anti": ([5, 4, 3, 2, 1, 1], [1, 2, 3, 4, 5, 4]),
    "continuous": ([3.71, 4.02, 2.15, 1.38, 4.97, 3.33, 2.89, 4.41], [4, 4, 2, 1, 5, 3, 3, 5]),
    "rectangular": ([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 3, 3], [1, 1, 2, 2, 3, 2, 1, 3, 3, 3, 2, 1]),
    "constant_prediction": ([3, 3, 3, 3, 3], [1, 2, 3, 4, 5]),
    "random200": ([rng.randint(1, 5) for _ in range(200)], [rng.randint(1, 5) for _ in range(200)]),
    "two": ([1, 2], [2, 1]),
}


def clean(v):
    v = float(v)
    return None if math.isnan(v) else v


out = {}
for name, (x, y) in cases.items():
    with np.errstate(all="ignore"):
        import warnings
        warnings.simplefilter("ignore")
        out[name] = {
            "x": x, "y": y,
            "pearson": clean(stats.pearsonr(x, y)[0]) if len(set(x)) > 1 and len(set(y)) > 1 else None,
            "spearman": clean(stats.spearmanr(x, y)[0]),
            "kendall_b": clean(stats.kendalltau(x, y, variant="b")[0]),
            "kendall_c": clean(stats.kendalltau(x, y, variant="c")[0]),
            "ranks_x": stats.rankdata(x).tolist(),
            "mae": float(np.mean(np.abs(np.array(x, float) - np.array(y, float)))),
        }
q = [0.3, 1.7, 2.2, 0.9, 5.5, 4.1, 3.3]
out["quantiles"] = {"values": q, "q": [0.0, 0.025, 0.5, 0.975, 1.0],
                    "expected": [float(np.percentile(q, 100 * p)) for p in [0.0, 0.025, 0.5, 0.975, 1.0]]}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ThemisBenchTests", "Fixtures",
                    "metric-reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path))
