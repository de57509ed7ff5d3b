"""The GIL is released while slim computes: Python threads run during a
slim call, and threads generating on separate Models (forks sharing the
weights) run concurrently, with the outputs of sequential calls."""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

import slim

PROMPTS = ["The capital of France is", "Water boils at", "The largest planet is", "In 1492,"]


def test_python_runs_during_a_slim_call(model: slim.Model) -> None:
    m = model.fork(n_threads=1)
    toks = m.tokenize("word " * 300)
    stamps: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0)  # pure Python work between stamps; needs the GIL

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    m.logits(toks, last_only=True)  # one C call: a 300-token prefill
    t1 = time.perf_counter()
    done.set()
    t.join()
    inside = [s for s in stamps if t0 <= s <= t1]
    gaps = [b - a for a, b in zip([t0] + inside, inside + [t1])]
    print(f"prefill {t1 - t0:.2f} s, {len(inside)} ticks inside, longest gap {max(gaps) * 1e3:.0f} ms")
    assert t1 - t0 > 0.1, "the call was too short to tell"
    # Holding the GIL would leave one gap as long as the whole call.
    assert max(gaps) < 0.5 * (t1 - t0)
    assert len(inside) > 100


def _generate_all(models: list[slim.Model], concurrent: bool) -> tuple[float, list[str]]:
    out: list[str] = [""] * len(models)

    def run(i: int) -> None:
        out[i] = models[i].generate(PROMPTS[i], 12, temperature=0)

    t0 = time.perf_counter()
    if concurrent:
        ts = [threading.Thread(target=run, args=(i,)) for i in range(len(models))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    else:
        for i in range(len(models)):
            run(i)
    return time.perf_counter() - t0, out


def test_calls_on_separate_models_overlap(model: slim.Model) -> None:
    """Two threads each in one long slim call: with the GIL released both are
    inside slim at once (held, the second could not start until the first
    ended), however busy the machine is."""
    models = [model.fork(n_threads=1) for _ in range(2)]
    toks = model.tokenize("word " * 200)
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * 2
    go = threading.Barrier(2)

    def run(i: int) -> None:
        go.wait()
        t0 = time.perf_counter()
        models[i].logits(toks, last_only=True)
        spans[i] = (t0, time.perf_counter())

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    (a0, a1), (b0, b1) = spans
    overlap = min(a1, b1) - max(a0, b0)
    print(f"calls {a1 - a0:.2f} s and {b1 - b0:.2f} s, overlapping {overlap:.2f} s")
    assert overlap > 0.5 * min(a1 - a0, b1 - b0)


def _idle_cpus() -> float:
    try:
        return (os.cpu_count() or 1) - os.getloadavg()[0]
    except OSError:
        return 0.0


def test_threads_generate_concurrently(model: slim.Model) -> None:
    """Wall time of N threads generating on N Models against the same work
    one after another: same outputs, and well under the sum when the machine
    has the cores (skipped on a saturated machine, where the OS gives the
    process the same share however many threads it runs)."""
    n = min(len(PROMPTS), os.cpu_count() or 1)
    if n < 2:
        pytest.skip("needs 2 CPUs to run threads side by side")
    models = [model.fork(n_threads=1, n_ctx=64) for _ in range(n)]
    seq_t, conc_t = [], []
    for _ in range(2):  # alternate: the machine may be shared
        t, seq = _generate_all(models, False)
        seq_t.append(t)
        t, conc = _generate_all(models, True)
        conc_t.append(t)
        assert conc == seq  # same greedy outputs
    s, c = statistics.median(seq_t), statistics.median(conc_t)
    idle = _idle_cpus()
    print(f"{n} threads: sequential {s:.2f} s, concurrent {c:.2f} s ({s / c:.2f}x), idle CPUs {idle:.1f}")
    if idle < n - 0.5 and c >= 0.8 * s:
        pytest.skip(f"machine saturated (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs): "
                    f"sequential {s:.2f} s, concurrent {c:.2f} s; the overlap test above still holds")
    assert c < 0.8 * s
