"""Shared fixtures: the slim checkout (models/, tests/data/, include/slim.h,
build/libslim.a) and the default models.  Paths can be overridden with
SLIM_SOURCE_DIR, SLIM_TEST_MODEL and SLIM_TEST_MODEL_SMOLLM2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import slim

ROOT = Path(os.environ.get("SLIM_SOURCE_DIR", Path(__file__).resolve().parents[3])).resolve()
DATA = ROOT / "tests" / "data"


def _path(env: str, default: str) -> Path:
    p = Path(os.environ.get(env, default))
    return p if p.is_absolute() else ROOT / p


MODEL = _path("SLIM_TEST_MODEL", "models/gemma-3-270m-q4_k_m.gguf")
SMOLLM2 = _path("SLIM_TEST_MODEL_SMOLLM2", "models/smollm2-135m-instruct-q4_1.gguf")
SYNTH_LLAMA = DATA / "synth_llama3.gguf"
HF_LLAMA = DATA / "hf" / "llama"


def need(p: Path) -> Path:
    if not p.exists():
        pytest.skip(f"{p} is missing (make model / a slim checkout)")
    return p


@pytest.fixture(scope="session")
def model_path() -> Path:
    return need(MODEL)


@pytest.fixture(scope="session")
def model(model_path: Path) -> slim.Model:
    """The default model, n_ctx 512, shared by the tests that only read it."""
    return slim.Model(model_path, n_ctx=512)


@pytest.fixture(scope="session")
def smollm2() -> slim.Model:
    return slim.Model(need(SMOLLM2), n_ctx=512)


@pytest.fixture(scope="session")
def c_build(tmp_path_factory: pytest.TempPathFactory):
    """Compile a C program against include/slim.h and build/libslim.a (the
    library the tests compare with); returns build(name, source) -> path."""
    cc = os.environ.get("CC", "cc")
    lib = ROOT / os.environ.get("SLIM_BUILD_DIR", "build") / "libslim.a"
    if not shutil.which(cc) or not (ROOT / "include" / "slim.h").is_file():
        pytest.skip("needs a C compiler and the slim checkout")
    if not lib.is_file():
        subprocess.run(["make", "-C", str(ROOT), "lib"], check=True, capture_output=True)
    out_dir = tmp_path_factory.mktemp("cprobe")

    def build(name: str, source: str) -> Path:
        src, exe = out_dir / f"{name}.c", out_dir / name
        src.write_text(source)
        cmd = [cc, "-std=c11", "-O1", "-I", str(ROOT / "include"), str(src), str(lib),
               "-lm", "-pthread", "-o", str(exe)]
        subprocess.run(cmd, check=True)
        return exe

    return build
