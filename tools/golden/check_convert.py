#!/usr/bin/env python3
"""Check `slim convert` against llama.cpp (llama-cpp-python) and the `gguf`
package; prints a report, writes nothing under the repository.

For each tests/data/synth_*.gguf (F32, every family) and each type in TYPES:
  1. `slim convert SRC OUT --type T` (the CLI named by --slim);
  2. the gguf package reads OUT (GGUFReader) and every KV of SRC that llama.cpp
     reads is present with the same value (tokenizer arrays included);
  3. llama.cpp quantizes SRC itself (llama_model_quantize, pure, no imatrix:
     what `llama-quantize --pure` does) and every tensor of slim's file must
     have the same type and the same bytes as llama.cpp's (keep: as SRC's);
  4. llama.cpp loads OUT and runs the synthetic test tokens: logits vs
     llama.cpp on SRC (identical for keep and f32) and top-1 agreement.
With --model FILE (e.g. models/gemma-3-270m-q4_k_m.gguf) the same for that
file with type keep (tensor bytes identical to the source, logits identical).
With --hf, each Hugging Face case of tests/data/hf (tools/golden/gen_hf.py:
config.json + safetensors and transformers' logits in golden.bin) converted
--type f32 and run by llama.cpp on golden.bin's tokens, against
transformers' logits (Q/K rows permuted for arch llama; cases whose sliding
window llama.cpp does not apply, mistral and phi3, differ past the window).

usage: .venv/bin/python tools/golden/check_convert.py [--slim build/slim] [--model FILE]
needs: pip install gguf numpy llama-cpp-python
"""
import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import gen_synthetic  # noqa: E402

MODELS = ["llama3", "mistral", "qwen2", "phi3", "gemma", "gemma2", "gemma3"]
# slim type -> llama_ftype for llama_model_quantize (None: no llama.cpp twin)
TYPES = {"keep": None, "f32": 0, "f16": 1, "bf16": 32, "q8_0": 7, "q4_0": 2, "q4_1": 3,
         "q5_0": 8, "q5_1": 9, "q4_k": 14, "q5_k": 16, "q6_k": 18}


def read(path):
    import gguf
    r = gguf.GGUFReader(path)
    kv = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        kv[f.name] = f.contents()
    t = {x.name: (int(x.tensor_type), [int(d) for d in x.shape],
                  np.asarray(x.data).tobytes()) for x in r.tensors}
    return kv, t


def llama_quantize(src, dst, ftype):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.pure = True
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    assert rc == 0, rc


def logits(path, tokens, n_vocab):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=256, n_batch=256, n_ubatch=256, n_threads=2,
                logits_all=True, verbose=False, seed=0, type_k=0, type_v=0, swa_full=True,
                flash_attn=False)
    assert llm.n_vocab() == n_vocab
    llm.eval(list(tokens))
    out = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    llm.close()
    return out


def kv_problems(src_kv, out_kv):
    bad = []
    for k, v in src_kv.items():
        if k in ("general.file_type",):
            continue
        if k not in out_kv:
            bad.append("missing " + k)
        elif not np.array_equal(np.asarray(v, dtype=object), np.asarray(out_kv[k], dtype=object)) \
                and v != out_kv[k]:
            bad.append("%s: %r -> %r" % (k, str(v)[:40], str(out_kv[k])[:40]))
    return bad


def check(slim, src, ty, tmp, tokens, n_vocab, ref_logits):
    out = os.path.join(tmp, "out.gguf")
    subprocess.run([slim, "convert", src, out, "--type", ty], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    src_kv, src_t = read(src)
    out_kv, out_t = read(out)
    notes = kv_problems(src_kv, out_kv)
    if TYPES[ty] is None:
        ref_t = src_t
    else:
        ref = os.path.join(tmp, "ref.gguf")
        llama_quantize(src, ref, TYPES[ty])
        _, ref_t = read(ref)
    same = 0
    for name, (tt, shape, data) in ref_t.items():
        o = out_t.get(name)
        if o is None:
            notes.append("tensor %s missing" % name)
        elif o[0] != tt or o[1] != shape:
            notes.append("tensor %s: type/shape %s %s, llama.cpp %s %s" %
                         (name, o[0], o[1], tt, shape))
        elif o[2] != data:
            notes.append("tensor %s: bytes differ" % name)
        else:
            same += 1
    extra = set(out_t) - set(ref_t)
    if extra:
        notes.append("extra tensors " + ", ".join(sorted(extra)))
    lg = logits(out, tokens, n_vocab)
    diff = float(np.max(np.abs(lg - ref_logits)))
    top1 = float(np.mean(lg.argmax(1) == ref_logits.argmax(1)))
    return same, len(ref_t), diff, top1, notes


def check_hf(slim, tmp):
    import glob
    import struct
    from llama_cpp import Llama
    for d in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "hf", "*", "golden.bin"))):
        case = os.path.dirname(d)
        out = os.path.join(tmp, "hf.gguf")
        r = subprocess.run([slim, "convert", case, out, "--type", "f32"], capture_output=True)
        if r.returncode:
            print("hf %-12s convert failed: %s" % (os.path.basename(case), r.stderr.decode()[-200:]))
            continue
        b = open(d, "rb").read()
        _, n, nv = struct.unpack("<3i", b[:12])
        toks = list(struct.unpack("<%di" % n, b[12:12 + 4 * n]))
        ref = np.frombuffer(b[12 + 4 * n:], dtype="<f4").reshape(n, nv)
        llm = Llama(model_path=out, n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2,
                    logits_all=True, verbose=False, type_k=0, type_v=0, swa_full=True,
                    flash_attn=False)
        llm.eval(toks)
        lg = np.array(llm.scores[:n], dtype=np.float32)
        llm.close()
        print("hf %-12s llama.cpp vs transformers: max|dlogit| %.3g (logit std %.3g), top-1 %.3f"
              % (os.path.basename(case), float(np.abs(lg - ref).max()), float(ref.std()),
                 float(np.mean(lg.argmax(1) == ref.argmax(1)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slim", default=os.path.join(ROOT, "build", "slim"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--only-model", action="store_true", help="skip the synthetic models")
    ap.add_argument("--hf", action="store_true", help="also the tests/data/hf cases")
    a = ap.parse_args()
    types = a.types.split(",")
    tokens = gen_synthetic.test_tokens()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if a.hf:
            check_hf(a.slim, tmp)
        jobs = [(os.path.join(ROOT, "tests", "data", "synth_%s.gguf" % m), types) for m in MODELS]
        if a.only_model:
            jobs = []
        if a.model:
            jobs.append((a.model, ["keep"]))
        for src, tys in jobs:
            from llama_cpp import Llama
            probe = Llama(model_path=src, n_ctx=16, verbose=False, vocab_only=True)
            n_vocab = probe.n_vocab()
            probe.close()
            toks = tokens if n_vocab == gen_synthetic.N_VOCAB else \
                [2] + [int(x) for x in np.random.default_rng(1).integers(3, n_vocab, 63)]
            ref_logits = logits(src, toks, n_vocab)
            for ty in tys:
                same, n, diff, top1, notes = check(a.slim, src, ty, tmp, toks, n_vocab, ref_logits)
                print("%-28s %-5s tensors identical to llama.cpp's %3d/%-3d  max|dlogit| %.3g  "
                      "top-1 %.3f%s" % (os.path.basename(src), ty, same, n, diff, top1,
                                        "" if not notes else "\n    " + "\n    ".join(notes[:8])))
                if same != n or (ty in ("keep", "f32") and diff != 0):
                    ok = False
    print("OK" if ok else "DIFFERENCES FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
