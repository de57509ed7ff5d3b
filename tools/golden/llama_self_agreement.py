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
  prompt + golden continuation, teacher-forced): each variant's top-1
  agreement with the golden configuration and its mean KL(golden || variant)
  over the same top-64 + rest bins tests/unit/test_model.c uses, i.e. the
  figures that test prints for slim.
"""
import numpy as np, sys
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


if len(sys.argv) > 3 and sys.argv[2] == "--golden":
    g = read_golden(sys.argv[3])
    cfg = {"golden (fa off, 512 batch)": dict(n_threads=2, flash_attn=False),
           "fa": dict(n_threads=2, flash_attn=True),
           "b16": dict(n_threads=1, n_batch=16, n_ubatch=16, flash_attn=False),
           "tbt": dict(n_threads=2, flash_attn=False)}
    for name, kw in cfg.items():
        m = Llama(model_path=MODEL, n_ctx=512, logits_all=True, verbose=False, **kw)
        top1 = n = 0; kls = []
        for toks, lse, ids, lg in g:
            m.reset()
            if name == "tbt":
                for t in toks:
                    m.eval([t])
            else:
                m.eval(toks)
            sc = np.array(m.scores[:len(toks)], np.float64)
            for t in range(len(toks)):
                top1 += int(np.argmax(sc[t])) == int(ids[t][0]); n += 1
                kls.append(binned_kl(lse[t], ids[t], lg[t], sc[t]))
        print("%-28s %d positions, top-1 agreement with the golden file %.4f, mean KL %.6f, max %.4f"
              % (name, n, top1 / n, np.mean(kls), np.max(kls)))
    sys.exit(0)
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
