"""Library errors raise SlimError subclasses carrying slim's message."""

from __future__ import annotations

from pathlib import Path

import pytest

import slim
from slim import ffi, lib

from conftest import DATA, SYNTH_LLAMA, need


def test_every_status_has_its_class() -> None:
    statuses = {v for k, v in ffi.typeof("slim_status").relements.items() if k != "SLIM_OK"}
    classes = {s: slim.error_class(s) for s in statuses}
    assert len(set(classes.values())) == len(statuses)  # one class per status
    for s, c in classes.items():
        assert issubclass(c, slim.SlimError) and c.status == s and c is not slim.SlimError
    assert slim.error_class(12345) is slim.SlimError
    assert slim.error_class(lib.SLIM_ERR_ABORTED) is slim.AbortedError
    assert slim.error_class(lib.SLIM_ERR_BUFFER_TOO_SMALL) is slim.BufferTooSmallError
    assert slim.error_class(lib.SLIM_ERR_INTERNAL) is slim.InternalError
    assert slim.error_class(lib.SLIM_ERR_BUSY) is slim.BusyError
    assert issubclass(slim.InvalidArgumentError, ValueError)
    assert issubclass(slim.SlimIOError, OSError)
    assert issubclass(slim.NoMemoryError, MemoryError)
    slim.check(lib.SLIM_OK)  # no exception


def test_check_raises_with_the_message_and_status() -> None:
    with pytest.raises(slim.SlimIOError):  # leaves a message on this thread
        slim.Model("models/missing.gguf")
    with pytest.raises(slim.SlimError) as e:  # a status slim never returns: not that message
        slim.check(12345)
    assert e.value.status == 12345 and e.value.message == "unknown status"
    with pytest.raises(slim.ContextFullError, match="^while testing: "):
        slim.check(lib.SLIM_ERR_CONTEXT_FULL, "while testing")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(slim.SlimIOError) as e:
        slim.Model(missing)
    assert str(missing) in str(e.value) and e.value.status == slim.Status.ERR_IO
    assert e.value.message == str(e.value)
    with pytest.raises(OSError):  # also catchable as the builtin
        slim.Model(missing)


def test_malformed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(slim.FormatError, match="bad.gguf"):
        slim.Model(bad)


def test_bad_arguments() -> None:
    path = need(SYNTH_LLAMA)
    with pytest.raises(slim.InvalidArgumentError, match="weight_type|type"):
        slim.Model(path, weight_type="q3_xyz")
    with pytest.raises(slim.InvalidArgumentError, match="backend must be one of cpu, cuda"):
        slim.Model(path, backend="tpu")
    with pytest.raises(slim.InvalidArgumentError, match="kv_type must be one of f16, f32"):
        slim.Model(path, kv_type="q8")
    with pytest.raises(slim.InvalidArgumentError, match="n_ctx"):
        slim.Model(path, n_ctx=10**7)
    m = slim.Model(path, n_ctx=16)
    with pytest.raises(slim.InvalidArgumentError, match="token"):
        m.logits([1, 2, 10**6])
    with pytest.raises(slim.InvalidArgumentError, match="non-empty"):
        m.logits([])
    with pytest.raises(slim.ContextFullError, match="context|full|n_ctx"):
        m.logits(list(range(1, 40)))
    with pytest.raises(slim.InvalidArgumentError, match="shape"):
        m.logits([1, 2], out=__import__("numpy").zeros(3, dtype="float32"))
    with pytest.raises(slim.InvalidArgumentError):
        m.generate([1, 2], 4, top_p=0.0)  # top_p must be > 0
    with pytest.raises(slim.InvalidArgumentError, match="no tokens"):
        m.generate([], 4)


def test_cuda_on_a_cpu_build_names_the_reason() -> None:
    try:
        slim.Model(need(SYNTH_LLAMA), backend="cuda").close()
    except (slim.UnsupportedError, slim.BackendError) as e:
        assert "CUDA" in e.message or "GPU" in e.message
    # else: a GPU build on a machine with a GPU: loading works


def test_chat_errors(model: slim.Model) -> None:
    with pytest.raises(slim.UnsupportedError, match="chat_template"):
        model.chat_template()  # the base 270M model carries no template
    with pytest.raises(slim.InvalidArgumentError, match="role"):
        model.apply_chat_template([{"role": "wizard", "content": "x"}], template="chatml")
    with pytest.raises(slim.InvalidArgumentError, match="message 0"):
        model.apply_chat_template([{"content": "x"}], template="chatml")
    with pytest.raises(slim.InvalidArgumentError):  # gemma needs user/assistant alternation
        model.apply_chat_template([{"role": "assistant", "content": "x"}], template="gemma")


def test_lora_errors(model: slim.Model, tmp_path: Path) -> None:
    with pytest.raises(slim.SlimError, match="nothing-here"):
        model.load_lora(tmp_path / "nothing-here")
    other = slim.Model(need(SYNTH_LLAMA), n_ctx=16)
    a = other.load_lora(need(DATA / "lora_llama3_a.gguf"))
    with pytest.raises(slim.InvalidArgumentError):
        model.attach_lora(a)  # an adapter of another model
    with pytest.raises(slim.InvalidArgumentError):
        other.detach_lora(a)  # not attached
    with pytest.raises(slim.InvalidArgumentError):
        other.attach_lora(a, float("nan"))


def test_error_message_is_per_thread() -> None:
    """The message read belongs to this thread's failing call."""
    import threading

    msgs: dict[str, str] = {}

    def fail(name: str) -> None:
        try:
            slim.Model(f"/nonexistent/{name}.gguf")
        except slim.SlimIOError as e:
            msgs[name] = e.message

    ts = [threading.Thread(target=fail, args=(f"m{i}",)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(msgs) == ["m0", "m1", "m2", "m3"]
    assert all(f"{k}.gguf" in v for k, v in msgs.items())
