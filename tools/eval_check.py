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
            if "slim_eval" in rec:
                continue
            items.setdefault(rec["candidate"], {})[rec["id"]] = rec
    return results, items


def boot(stat, n, samples, seed):
    """95% percentile interval of stat(index array) over resamples of 0..n-1."""
    res = stats.bootstrap((np.arange(n),), stat, n_resamples=samples, vectorized=True,
                          method="percentile", confidence_level=0.95, batch=500,
                          random_state=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


def macro_f1_vec(gold, pred, n_labels):
    """Macro-F1 of each row of resampled indices, over the labels present in
    that resample's gold or predictions (scikit-learn's default)."""
    def stat(idx, axis=-1):
        idx = np.atleast_2d(idx)
        g, p = gold[idx], pred[idx]
        out = np.empty(idx.shape[0])
        for r in range(idx.shape[0]):
            tp = np.bincount(g[r][g[r] == p[r]], minlength=n_labels)
            cg = np.bincount(g[r], minlength=n_labels)
            cp = np.bincount(p[r], minlength=n_labels)
            present = (cg + cp) > 0
            f1 = 2 * tp[present] / (cg[present] + cp[present])
            out[r] = f1.mean()
        return out
    return stat


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
    lo, hi = boot(lambda idx, axis=-1: correct[idx].mean(axis=-1), len(ids), samples, seed)
    report("accuracy CI low", lo, cand["accuracy"]["lo"], tol)
    report("accuracy CI high", hi, cand["accuracy"]["hi"], tol)
    lo, hi = boot(macro_f1_vec(g, p, len(labels)), len(ids), samples, seed)
    report("macro_f1 CI low", lo, cand["macro_f1"]["lo"], tol)
    report("macro_f1 CI high", hi, cand["macro_f1"]["hi"], tol)


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

    def micro_vec(idx, axis=-1):
        a, b, c = t[idx].sum(-1), fp[idx].sum(-1), fn[idx].sum(-1)
        d = 2 * a + b + c
        return np.where(d > 0, 2 * a / np.where(d > 0, d, 1), 0.0)
    lo, hi = boot(micro_vec, len(ids), samples, seed)
    report("field_f1 CI low", lo, cand["field_f1"]["lo"], tol)
    report("field_f1 CI high", hi, cand["field_f1"]["hi"], tol)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--ci-tol", type=float, default=0.005)
    a = ap.parse_args()
    res, items = load(a.dir)
    bad = 0

    for cand in res["candidates"]:
        name = cand["name"]
        recs = items.get(name, {})
        ids = list(recs)
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
                  f"{'' if tol < 1e-6 else f' (tolerance {tol})'}")
        samples, seed = res["bootstrap"]["samples"], res["bootstrap"]["seed"]
        if res["kind"] == "classify":
            check_classify(res, cand, recs, ids, samples, seed, a.ci_tol, report)
        elif res["kind"] == "extract":
            check_extract(res, cand, recs, ids, samples, seed, a.ci_tol, report)
    print("all figures agree" if not bad else f"{bad} figure(s) disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
