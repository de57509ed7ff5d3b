"""slim.Model against the C API: load, info, tokenizer, logits (bitwise),
fork, metadata, tensors, Hugging Face directories, save_gguf, logging."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import slim
from slim import ffi, lib

from conftest import HF_LLAMA, ROOT, SYNTH_LLAMA, need

# A C program: load the model, prefill the tokens into a fresh context, write
# every row of logits (n_tokens x n_vocab float32) to a file.
LOGITS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "slim.h"
int main(int argc, char **argv) {
    slim_model *m; slim_context *c;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = atoi(argv[3]);
    if (slim_model_load(argv[1], NULL, &m) || slim_context_create(m, &cp, &c)) {
        fprintf(stderr, "%s\n", slim_last_error());
        return 1;
    }
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    int n = argc - 4;
    slim_token *t = malloc(n * sizeof *t);
    for (int i = 0; i < n; i++) t[i] = atoi(argv[4 + i]);
    float *out = malloc((size_t)n * info.n_vocab * sizeof(float));
    if (slim_prefill(c, t, n, out)) { fprintf(stderr, "%s\n", slim_last_error()); return 1; }
    FILE *f = fopen(argv[2], "wb");
    fwrite(out, sizeof(float), (size_t)n * info.n_vocab, f);
    fclose(f);
    slim_context_free(c);
    slim_model_free(m);
    return 0;
}
"""


def c_logits(c_build, path: Path, tokens: list[int], n_ctx: int, tmp: Path, n_vocab: int) -> np.ndarray:
    exe = c_build("logits", LOGITS_C)
    out = tmp / "logits.bin"
    subprocess.run([str(exe), str(path), str(out), str(n_ctx), *map(str, tokens)], check=True)
    return np.fromfile(out, dtype=np.float32).reshape(len(tokens), n_vocab)


def test_load_and_info(model: slim.Model, model_path: Path) -> None:
    i = model.info
    assert isinstance(i, slim.ModelInfo)
    # One dataclass field per struct field: the header cannot grow unnoticed.
    struct_fields = [f for f, _ in ffi.typeof("slim_model_info").fields if f != "struct_size"]
    assert [f.name for f in dataclasses.fields(slim.ModelInfo)] == struct_fields
    assert (i.architecture, i.file_type) == ("gemma3", "Q4_K_M")
    assert i.n_vocab == model.n_vocab == 262144
    assert i.file_size == model_path.stat().st_size
    assert i.n_layer == 18 and i.bos == 2 and i.eos == 1
    assert model.path == str(model_path)
    assert model.n_ctx == 512
    assert "gemma3" in repr(model)


def test_metadata_and_tensors(model: slim.Model) -> None:
    md = model.metadata
    assert md["general.architecture"] == "'gemma3'"
    assert len(md) == lib.slim_model_meta_count(model._w.ptr) > 10
    ts = model.tensors
    assert len(ts) == lib.slim_model_tensor_count(model._w.ptr)
    emb = next(t for t in ts if t.name == "token_embd.weight")
    assert emb.ne == (640, 262144) and emb.n_dims == 2 and emb.size > 0
    assert [f.name for f in dataclasses.fields(slim.TensorInfo)] == [
        f for f, _ in ffi.typeof("slim_tensor_info").fields if f != "struct_size"
    ]


def test_tokenize_detokenize(model: slim.Model) -> None:
    ids = model.tokenize("Hello world")
    assert ids == [2, 9259, 1902]  # llama.cpp's tokenization of the default model
    assert model.tokenize("Hello world", add_special=False) == [9259, 1902]
    assert model.tokenize("<eos>", add_special=False, parse_special=True) == [1]
    assert model.tokenize("<eos>", add_special=False) != [1]
    assert model.detokenize(ids) == "Hello world"
    assert model.detokenize([2, 9259], render_special=True) == "<bos>Hello"
    assert model.detokenize_bytes([9259, 1902]) == b"Hello world"
    assert model.token_to_piece(1902) == b" world"
    assert model.token_text(1902) == "\u2581world"
    assert model.token_text(10**9) is None
    assert model.is_eog(1) and not model.is_eog(1902)
    text = "naïve café ✓ " * 50  # longer than the first buffer guess
    assert model.detokenize(model.tokenize(text, add_special=False)) == text
    assert model.tokenize("") == [2]


def test_logits_bitwise_equal_to_c(model: slim.Model, model_path: Path, c_build, tmp_path: Path) -> None:
    toks = model.tokenize("The capital of France is Paris, and the capital of Italy is")
    ref = c_logits(c_build, model_path, toks, 512, tmp_path, model.n_vocab)
    got = model.logits(toks)
    assert got.shape == (len(toks), model.n_vocab) and got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))
    last = model.logits(toks, last_only=True)
    assert np.array_equal(last.view(np.uint32), ref[-1].view(np.uint32))
    out = np.zeros_like(ref)
    assert model.logits(np.array(toks, dtype=np.int64), out=out) is out  # written in place
    assert np.array_equal(out, ref)
    assert model.n_past == len(toks)
    model.reset()
    assert model.n_past == 0


def test_logits_through_the_low_level_binding(model: slim.Model) -> None:
    """slim.lib is the whole C API: the same prefill called directly."""
    toks = model.tokenize("Bitwise")
    ctx = ffi.new("slim_context **")
    cp = ffi.new("slim_context_params *", lib.slim_context_default_params())
    cp.n_ctx = 64
    slim.check(lib.slim_context_create(model._w.ptr, cp, ctx))
    try:
        arr = ffi.new("slim_token[]", toks)
        slim.check(lib.slim_prefill(ctx[0], arr, len(toks), ffi.NULL))
        row = np.frombuffer(ffi.buffer(lib.slim_get_logits(ctx[0]), 4 * model.n_vocab), np.float32)
        assert np.array_equal(row, model.logits(toks, last_only=True))
    finally:
        lib.slim_context_free(ctx[0])


def test_fork_shares_weights(model: slim.Model) -> None:
    f = model.fork(n_ctx=64, n_threads=1)
    assert f._w is model._w and f.n_ctx == 64
    toks = model.tokenize("Shared weights")
    assert np.array_equal(f.logits(toks), model.logits(toks))
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.logits(toks)
    with pytest.raises(TypeError):
        model.fork(bogus=1)
    assert model.n_vocab == 262144  # the original is untouched


def test_context_manager_and_close(model_path: Path) -> None:
    with slim.Model(SYNTH_LLAMA if SYNTH_LLAMA.exists() else model_path, n_ctx=64) as m:
        assert m.logits([1, 2, 3]).shape[0] == 3
    with pytest.raises(ValueError):
        m.tokenize("x")
    m.close()  # twice is fine


def test_no_mmap_and_weight_type_give_the_c_results(c_build, tmp_path: Path) -> None:
    path = need(SYNTH_LLAMA)
    toks = list(range(1, 20))
    base = slim.Model(path, n_ctx=64)
    ref = c_logits(c_build, path, toks, 64, tmp_path, base.n_vocab)
    assert np.array_equal(base.logits(toks), ref)
    assert np.array_equal(slim.Model(path, use_mmap=False, n_ctx=64).logits(toks), ref)
    q = slim.Model(path, weight_type="q8_0", n_ctx=64)
    assert q.info.file_type == "Q8_0"
    got = q.logits(toks)
    assert not np.array_equal(got, ref)
    assert np.abs(got - ref).max() < 0.2 * ref.std() and (got.argmax(1) == ref.argmax(1)).all()


def test_hf_directory_against_transformers() -> None:
    d = need(HF_LLAMA)
    raw = (d / "golden.bin").read_bytes()
    magic, n, v = struct.unpack("<3i", raw[:12])
    toks = list(struct.unpack(f"<{n}i", raw[12 : 12 + 4 * n]))
    ref = np.frombuffer(raw[12 + 4 * n :], dtype=np.float32).reshape(n, v)
    m = slim.Model(d, n_ctx=128, kv_type="f32")
    assert m.info.n_vocab == v and m.metadata == {}
    got = m.logits(toks)
    assert np.abs(got - ref).max() <= 1e-4 * ref.std()
    assert (got.argmax(1) == ref.argmax(1)).all()
    with pytest.raises(slim.UnsupportedError):
        m.tokenize("no tokenizer.json in this directory")


def test_save_gguf_roundtrip(tmp_path: Path) -> None:
    m = slim.Model(need(SYNTH_LLAMA), n_ctx=64)
    seen: list[float] = []
    out = tmp_path / "copy.gguf"
    m.save_gguf(out, progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    toks = list(range(1, 12))
    assert np.array_equal(slim.Model(out, n_ctx=64).logits(toks), m.logits(toks))
    m.save_gguf(tmp_path / "q.gguf", "q8_0")
    assert slim.Model(tmp_path / "q.gguf").info.file_type == "Q8_0"

    def boom(_: float) -> None:
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        m.save_gguf(tmp_path / "x.gguf", progress=boom)


def test_log_callback() -> None:
    got: list[tuple[slim.LogLevel, str]] = []
    slim.set_log_callback(lambda lvl, msg: got.append((lvl, msg)))
    try:
        slim.Model(need(SYNTH_LLAMA), n_ctx=32)
    finally:
        slim.set_log_callback(None)
    assert [lvl for lvl, _ in got] == [slim.LogLevel.INFO, slim.LogLevel.INFO]
    assert got[0][1].startswith("loaded ") and "synth_llama3.gguf" in got[0][1]
    assert got[1][1].startswith("context: ") and "n_ctx 32" in got[1][1]
    slim.Model(SYNTH_LLAMA, n_ctx=32)
    assert len(got) == 2  # silent again


def test_version_and_status() -> None:
    assert slim.version() == slim.__version__ == "0.1.0"
    assert slim.status_string(slim.Status.ERR_IO) == "i/o error" or slim.status_string(3)
    assert slim.Status.OK == 0 and slim.Status.ERR_INTERNAL == lib.SLIM_ERR_INTERNAL
    assert slim.status_string(999) == "unknown status"


def test_model_is_shareable_between_threads(model: slim.Model) -> None:
    """Calls on one Model from several threads take turns (no crash, same result)."""
    toks = model.tokenize("Take turns")
    ref = model.logits(toks, last_only=True)
    res: list[np.ndarray] = []
    ts = [threading.Thread(target=lambda: res.append(model.logits(toks, last_only=True))) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(res) == 3 and all(np.array_equal(r, ref) for r in res)
