#!/usr/bin/env python3
"""Independent check of `slim eval`'s figures (docs/EVAL.md).

Recomputes, from DIR/items.jsonl alone, with scikit-learn: accuracy and
macro-F1 (classify), per-field and micro field F1, exact match and validity
(extract); and the 95% bootstrap intervals with scipy.stats.bootstrap
(percentile method, the tool's number of resamples).  The point figures must
equal DIR/results.json's to 1e-9; the interval ends must be within --ci-tol
(default 0.005, i.e. 0.5 points).  Exit status 0 when everything agrees.

usage: eval_check.py DIR [--ci-tol 0.005]
"""
import argparse
import json
import sys
import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score

NONE = "\x00none"


def load(dirname):
    with open(f"{dirname}/results.json") as f:
        results = json.load(f)
    items = {}
    with open(f"{dirname}/items.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if "candidate" not in rec:  # the header, a session's {"run": ...}
                continue
            items.setdefault(rec["candidate"], {})[rec["id"]] = rec
    return results, items


GAMMA = np.uint64(0x9E3779B97F4A7C15)


def splitmix_indices(seed, n, rows, first_row):
    """slim eval's resamples (eval_metrics.c: splitmix64, draw k = row * n + i),
    rows first_row .. first_row + rows - 1, as an int array of shape (rows, n)."""
    k = np.arange(first_row * n, (first_row + rows) * n, dtype=np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + k * GAMMA
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n)).astype(np.int64).reshape(rows, n)


def boot(stat, n, samples, seed, step=0.0):
    """Two 95% percentile intervals of stat (vectorized over rows of resampled
    item indices): slim's own resamples replayed (must match exactly), and
    scipy.stats.bootstrap's (independent resamples).  A proportion of n items
    only takes the values k/n, so its ends can differ by one step of 1/n when
    the 2.5% or 97.5% point falls next to a jump; step is that grid (0: none)."""
    vals = np.concatenate([stat(splitmix_indices(seed, n, min(1000, samples - r), r))
                           for r in range(0, samples, 1000)])
    replay = np.percentile(vals, [2.5, 97.5])
    res = stats.bootstrap((np.arange(n),), lambda idx, axis=-1: stat(np.atleast_2d(idx)),
                          n_resamples=samples, vectorized=True, method="percentile",
                          confidence_level=0.95, batch=1000,
                          random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return replay, (ci.low, ci.high), step


def macro_f1_vec(gold, pred, n_labels):
    """Macro-F1 per row of resampled indices, over the labels present in that
    resample's gold or predictions (scikit-learn's default), zero_division 0."""
    def stat(idx):
        g, p = gold[idx], pred[idx]
        eye = np.eye(n_labels, dtype=np.int32)
        cg, cp = eye[g].sum(1), eye[p].sum(1)
        tp = (eye[g] * (g == p)[..., None]).sum(1)
        present = (cg + cp) > 0
        f1 = np.where(present, 2 * tp / np.where(present, cg + cp, 1), 0.0)
        return f1.sum(1) / present.sum(1)
    return stat


def check_ci(report, name, result, cand_ci, tol):
    replay, (lo, hi), step = result
    report(f"{name} CI low (slim's resamples)", replay[0], cand_ci["lo"])
    report(f"{name} CI high (slim's resamples)", replay[1], cand_ci["hi"])
    t = max(tol, step + 1e-9)
    report(f"{name} CI low (scipy)", lo, cand_ci["lo"], t)
    report(f"{name} CI high (scipy)", hi, cand_ci["hi"], t)


def check_classify(res, cand, recs, ids, samples, seed, tol, report):
    labels = res["labels"]
    index = {l: k for k, l in enumerate(labels)}
    gold = [recs[i]["gold"] for i in ids]
    pred = [recs[i]["output"] for i in ids]
    acc = accuracy_score(gold, pred)
    mf1 = f1_score(gold, pred, average="macro", zero_division=0)
    report("accuracy", acc, cand["accuracy"]["value"])
    report("macro_f1", mf1, cand["macro_f1"]["value"])
    g = np.array([index[x] for x in gold])
    p = np.array([index.get(x, 0) for x in pred])
    correct = (g == p).astype(float)
    n = len(ids)
    check_ci(report, "accuracy", boot(lambda idx: correct[idx].mean(-1), n, samples, seed, 1 / n),
             cand["accuracy"], tol)
    check_ci(report, "macro_f1", boot(macro_f1_vec(g, p, len(labels)), n, samples, seed),
             cand["macro_f1"], tol)


def check_extract(res, cand, recs, ids, samples, seed, tol, report):
    fields = res["fields"]
    all_true, all_pred = [], []
    tp = np.zeros(len(ids)), np.zeros(len(ids)), np.zeros(len(ids))
    for k, f in enumerate(fields):
        yt = [str(recs[i]["gold"].get(f, NONE)) for i in ids]
        yp = [str((recs[i]["pred"] or {}).get(f, NONE)) for i in ids]
        vals = sorted({v for v in yt + yp if v != NONE})
        f1 = f1_score(yt, yp, labels=vals, average="micro", zero_division=0) if vals else 0.0
        report(f"field {f} F1", f1, cand["per_field_f1"][k])
        all_true += [f + "=" + v for v in yt]
        all_pred += [f + "=" + v for v in yp]
        for n, (a, b) in enumerate(zip(yt, yp)):
            if a != NONE and a == b:
                tp[0][n] += 1
            else:
                tp[1][n] += b != NONE
                tp[2][n] += a != NONE
    vals = sorted({v for v in all_true + all_pred if not v.endswith("=" + NONE)})
    micro = f1_score(all_true, all_pred, labels=vals, average="micro", zero_division=0)
    report("field_f1 (micro)", micro, cand["field_f1"]["value"])
    exact = accuracy_score([json.dumps(recs[i]["gold"], sort_keys=True) for i in ids],
                           [json.dumps(recs[i]["pred"], sort_keys=True) if recs[i]["valid"]
                            else "invalid" for i in ids])
    report("exact_match", exact, cand["exact_match"]["value"])
    report("validity", np.mean([recs[i]["valid"] for i in ids]), cand["validity"]["value"])
    t, fp, fn = tp

    def micro_vec(idx):
        a, b, c = t[idx].sum(-1), fp[idx].sum(-1), fn[idx].sum(-1)
        d = 2 * a + b + c
        return np.where(d > 0, 2 * a / np.where(d > 0, d, 1), 0.0)
    check_ci(report, "field_f1", boot(micro_vec, len(ids), samples, seed), cand["field_f1"], tol)
    exact_v = np.array([float(recs[i]["score"]) for i in ids])
    check_ci(report, "exact_match",
             boot(lambda idx: exact_v[idx].mean(-1), len(ids), samples, seed, 1 / len(ids)),
             cand["exact_match"], tol)


def main():
    warnings.filterwarnings("ignore", module="sklearn")  # "looks like a regression" on many values
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--ci-tol", type=float, default=0.005)
    a = ap.parse_args()
    res, items = load(a.dir)
    bad = 0

    for cand in res["candidates"]:
        name = cand["name"]
        recs = items.get(name, {})
        ids = [i for i in res["item_ids"] if i in recs]  # the tool's item order
        print(f"{name}: {len(ids)} items")
        if len(ids) != res["n_items"]:
            print(f"  FAIL: items.jsonl has {len(ids)} items, results.json {res['n_items']}")
            bad += 1
            continue

        def report(what, mine, tool, tol=1e-9):
            nonlocal bad
            ok = tool is not None and abs(mine - tool) <= tol
            bad += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {what}: python {mine:.6f}, slim {tool:.6f}"
                  f"{'' if tol < 1e-6 else f' (tolerance {tol:.4f})'}")
        samples, seed = res["bootstrap"]["samples"], res["bootstrap"]["seed"]
        if res["kind"] == "classify":
            check_classify(res, cand, recs, ids, samples, seed, a.ci_tol, report)
        elif res["kind"] == "extract":
            check_extract(res, cand, recs, ids, samples, seed, a.ci_tol, report)
    print("all figures agree" if not bad else f"{bad} figure(s) disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
