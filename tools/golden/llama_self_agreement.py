#!/usr/bin/env python3
"""How well llama.cpp agrees with itself on the forward-pass test prompts.

Runs the prompts of gen_forward.py through llama.cpp (llama-cpp-python) four
ways: the golden configuration (no flash attention, one 512-token batch), with
flash attention (fa), with 16-token micro-batches on 1 thread (b16), and the
golden configuration fed one token per call (tbt); prints the top-1
agreement of each variant with the first over every prompt position and how
many 32-token greedy continuations are identical (and the mean length of
their identical prefix).  This is the yardstick for
the thresholds in tests/unit/test_model.c.

usage: .venv/bin/python tools/golden/llama_self_agreement.py [MODEL.gguf]   (from the repo root)
       .venv/bin/python tools/golden/llama_self_agreement.py MODEL.gguf --golden FILE
  --golden: instead, the forward test's own data (gen_forward.py's FILE: every
  prompt + golden continuation, teacher-forced): for every configuration in
  CONFIGS (flash attention off/on x n_batch 512/16/1 x 2/1 threads; the
  golden one is fa off, 512, 2 threads) its top-1 agreement with the golden
  file and its mean KL(golden || config) over the same top-64 + rest bins
  tests/unit/test_model.c uses, i.e. the figures that test prints for slim.

OMP_WAIT_POLICY=PASSIVE (set here unless the caller set it): llama-cpp-python's
ggml is built with OpenMP, whose default barrier spins.  A one-token decode is
hundreds of tiny graph nodes with a barrier after each; on a machine whose
cores other processes keep busy, the spinning thread holds the core its
partner waits for, so each barrier costs a scheduler slice: 0.5-1 s per
token (peaks 3-7 s) at 2 threads instead of 0.14 s, which is why the
one-token-per-call configuration "did not finish in 95 minutes".  The policy
changes only how threads wait, not what they compute.
"""
import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before llama_cpp loads libgomp: see above
import itertools, sys, time
import numpy as np
sys.path.insert(0, __file__.rsplit('/', 1)[0])
from gen_forward import PROMPTS
from llama_cpp import Llama
MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/gemma-3-270m-q4_k_m.gguf"


def read_golden(path):
    """gen_forward.py's file: [(tokens, lse[T], ids[T][K], logits[T][K])]."""
    import struct
    b = open(path, "rb").read()
    assert b[:8] == b"SLIMFWD1"
    n_prompts, n_vocab, top_k, n_greedy = struct.unpack_from("<4I", b, 8)
    off, out = 24, []
    for _ in range(n_prompts):
        n_prompt, n_tokens = struct.unpack_from("<2I", b, off); off += 8
        toks = list(struct.unpack_from("<%di" % n_tokens, b, off)); off += 4 * n_tokens
        lse, ids, lg = [], [], []
        for _ in range(n_tokens):
            lse.append(struct.unpack_from("<f", b, off)[0]); off += 4
            ids.append(struct.unpack_from("<%di" % top_k, b, off)); off += 4 * top_k
            lg.append(struct.unpack_from("<%df" % top_k, b, off)); off += 4 * top_k
        out.append((toks, np.array(lse), np.array(ids), np.array(lg)))
    return out


def binned_kl(lse, ids, lg, row):
    """KL(golden || row) over the golden top-k plus one bin for the rest (test_model.c)."""
    row = np.asarray(row, np.float64)
    m = row.max(); lse_row = m + np.log(np.exp(row - m).sum())
    lp_ref = lg - lse; lp = row[ids] - lse_row
    p = np.exp(lp_ref)
    kl = float((p * (lp_ref - lp)).sum())
    r, q = 1 - p.sum(), 1 - np.exp(lp).sum()
    if r > 1e-12 and q > 1e-12:
        kl += r * np.log(r / q)
    return kl


# (name, Llama keyword arguments): the golden configuration (gen_forward.py's) first
CONFIGS = [("fa %s, n_batch %3d, %d thr" % ("on " if fa else "off", nb, nt),
            dict(n_threads=nt, n_batch=nb, n_ubatch=nb, flash_attn=fa))
           for fa, nb, nt in itertools.product((False, True), (512, 16, 1), (2, 1))]


def config_logits(kw, seqs, model=None):
    """Yield each token sequence's teacher-forced logits (float32, n_tokens x n_vocab)
    from llama.cpp in configuration kw; n_batch 1 is one token per decode call."""
    m = Llama(model_path=model or MODEL, n_ctx=512, logits_all=True, verbose=False, **kw)
    for toks in seqs:
        m.reset()
        m.eval(toks)
        yield np.array(m.scores[:len(toks)], np.float32)
    del m


def golden_spread(path):
    g = read_golden(path)
    print("llama.cpp configurations vs %s (%s): top-1 agreement, mean / max binned KL(golden || config)"
          % (path, MODEL), flush=True)
    for name, kw in CONFIGS:
        t0 = time.time()
        top1 = n = 0; kls = []
        for (toks, lse, ids, lg), sc in zip(g, config_logits(kw, [x[0] for x in g])):
            for t in range(len(toks)):
                top1 += int(np.argmax(sc[t])) == int(ids[t][0]); n += 1
                kls.append(binned_kl(lse[t], ids[t], lg[t], sc[t]))
        print("%-26s %d positions, top-1 %.4f, mean KL %.6f, max %.4f  (%.0f s)"
              % (name, n, top1 / n, np.mean(kls), np.max(kls), time.time() - t0), flush=True)


def main():
    if len(sys.argv) > 3 and sys.argv[2] == "--golden":
        return golden_spread(sys.argv[3])
    self_agreement()


def self_agreement():
    a = Llama(model_path=MODEL, n_ctx=512, n_threads=2, logits_all=True, verbose=False, flash_attn=False)
    b = Llama(model_path=MODEL, n_ctx=512, n_threads=2, logits_all=True, verbose=False, flash_attn=True)
    c = Llama(model_path=MODEL, n_ctx=512, n_threads=1, n_batch=16, n_ubatch=16, logits_all=True, verbose=False, flash_attn=False)
    VARIANTS = ('fa', 'b16', 'tbt')
    agree = dict.fromkeys(VARIANTS, 0); n = 0; greedy = dict.fromkeys(VARIANTS, 0); prefix = dict.fromkeys(VARIANTS, 0)
    for text in PROMPTS:
        toks = a.tokenize(text.encode(), add_bos=True)
        outs = {}
        for name, m in (('ref', a), ('fa', b), ('b16', c), ('tbt', a)):
            m.reset()
            if name == 'tbt':  # the golden configuration, one token per decode call
                for t in toks:
                    m.eval([t])
            else:
                m.eval(toks)
            outs[name] = np.array(m.scores[:len(toks)])
            g = []
            for _ in range(32):
                g.append(int(np.argmax(m.scores[m.n_tokens-1]))); m.eval([g[-1]])
            outs[name+'g'] = g
        n += len(toks)
        for k in VARIANTS:
            agree[k] += (outs[k].argmax(-1) == outs['ref'].argmax(-1)).sum()
            greedy[k] += outs[k+'g'] == outs['refg']
            same = 0
            while same < 32 and outs[k+'g'][same] == outs['refg'][same]:
                same += 1
            prefix[k] += same
    for k in agree: print(k, "top-1 agreement with llama.cpp default: %.4f" % (agree[k]/n), "greedy identical %d/10" % greedy[k],
              "mean identical greedy prefix %.1f of 32 tokens" % (prefix[k] / len(PROMPTS)))


if __name__ == "__main__":
    main()
