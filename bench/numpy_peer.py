#!/usr/bin/env python3
"""The numpy peer of `npm run bench -- aggregate`: the computation Flower's
strategies perform in numpy, timed on the bench's own data.

Usage: numpy_peer.py SPEC.json
SPEC: {"data": path of N x P float32 (row-major), "clients": N, "params": P,
       "weights": [...], "f": int, "beta": float, "runs": int,
       "strategies": [...], "out": directory for each strategy's result}
Prints one JSON object: {"numpy": version, "times": {strategy: [ms, ...]}}.
Each strategy's result is written to OUT/<strategy>.f32 so the bench can
compare it with the native one.
"""
import json
import sys
import time
from functools import reduce

import numpy as np


def fedavg(x, weights):
    # Flower's aggregate(): scale each client, reduce(np.add), divide by the total.
    scaled = [x[i] * w for i, w in enumerate(weights)]
    return reduce(np.add, scaled) / sum(weights)


def median(x):
    # Flower's aggregate_median(): np.median over the stacked clients.
    return np.median(x, axis=0)


def trimmed_mean(x, beta):
    # Flower's aggregate_trimmed_avg(): partition at both cuts, mean of the middle.
    n = x.shape[0]
    cut = int(beta * n)
    part = np.partition(x, (cut, n - cut - 1), axis=0)
    return np.mean(part[cut:n - cut], axis=0)


def krum(x, weights, f):
    # Flower's aggregate_krum(): squared pairwise norms (here only the upper
    # triangle, half of what Flower computes), scores over the n - f - 2
    # closest, the best client's update.
    n = x.shape[0]
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist[i, j] = dist[j, i] = np.linalg.norm(x[i] - x[j]) ** 2
    closest = n - f - 2
    scores = [np.sort(np.delete(dist[i], i))[:closest].sum() for i in range(n)]
    return x[int(np.argmin(scores))]


def main():
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    n, p = spec["clients"], spec["params"]
    x = np.fromfile(spec["data"], dtype=np.float32, count=n * p).reshape(n, p)
    weights, f, beta = spec["weights"], spec["f"], spec["beta"]
    fns = {
        "fedavg": lambda: fedavg(x, weights),
        "median": lambda: median(x),
        "trimmed-mean": lambda: trimmed_mean(x, beta),
        "krum": lambda: krum(x, weights, f),
    }
    times = {}
    for strategy in spec["strategies"]:
        fn = fns[strategy]
        result = fn()  # warm-up, and the result the bench compares
        np.asarray(result, dtype=np.float32).tofile(f"{spec['out']}/{strategy}.f32")
        ms = []
        for _ in range(spec["runs"]):
            t0 = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t0) * 1e3)
        times[strategy] = ms
    print(json.dumps({"numpy": np.__version__, "times": times}))


if __name__ == "__main__":
    main()
