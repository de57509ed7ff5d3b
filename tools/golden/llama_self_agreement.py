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
"""
import numpy as np, sys
sys.path.insert(0, __file__.rsplit('/', 1)[0])
from gen_forward import PROMPTS
from llama_cpp import Llama
MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/gemma-3-270m-q4_k_m.gguf"
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
