"""Fixtures for slim serve's tests: a real `slim serve` started on a free loopback port
with the default model (Gemma 3 270M; the gemma chat template, which the base model's
GGUF does not carry), stopped with SIGTERM afterwards (which must drain and exit 0).

Environment: SLIM_CLI (the slim binary; build/slim), SLIM_TEST_MODEL (the default
model), SLIM_SERVE_THREADS (forward-pass threads, default 2)."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("SLIM_CLI", ROOT / "build" / "slim"))
MODEL = Path(os.environ.get("SLIM_TEST_MODEL", ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"))
THREADS = os.environ.get("SLIM_SERVE_THREADS", "2")
MODEL_NAME = "gemma-3-270m"


class Server:
    """A running `slim serve`; .url, .port, .proc, .log (its stderr so far)."""

    def __init__(self, args: list[str], log_path: Path):
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(CLI), "serve", "-m", str(MODEL), "--port", "0", "-t", THREADS,
             "--served-model-name", MODEL_NAME, "--template", "gemma", *args],
            stdout=subprocess.PIPE, stderr=self.log_file, stdin=subprocess.DEVNULL)
        self.port = 0
        line = b""
        # The port line comes after the model has loaded (stdout).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"slim serve did not start: {line!r}\n{self.log}")
        self.url = f"http://127.0.0.1:{self.port}"
        # Drain stdout so the server never blocks on it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    @property
    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def client(self, **kw) -> openai.OpenAI:
        kw.setdefault("api_key", "unused")
        return openai.OpenAI(base_url=self.url + "/v1", max_retries=0, timeout=300, **kw)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log_file.close()
        return rc


def assert_sanitizer_clean(log: str) -> None:
    """Nothing from ASan, LSan or UBSan in a server's stderr (SAN=1 builds)."""
    for bad in ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"]:
        assert bad not in log, log[-8000:]


def need_server_build() -> None:
    if not CLI.exists():
        pytest.skip(f"{CLI} not built")
    if not MODEL.exists():
        pytest.skip(f"{MODEL} missing (make model)")
    r = subprocess.run([str(CLI), "serve", "-m", str(MODEL), "--port", "-1"],
                       capture_output=True, text=True)
    if "built without the server" in r.stderr:
        pytest.skip("slim was built without the server (no libmicrohttpd-dev)")


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_lora(dirname: Path) -> Path:
    """A PEFT adapter for Gemma 3 270M (o_proj of every layer, random, large enough to
    change the greedy text)."""
    dirname.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    r, n_embd, q_dim, n_layer = 8, 640, 4 * 256, 18
    t = {}
    for layer in range(n_layer):
        name = f"base_model.model.model.layers.{layer}.self_attn.o_proj"
        t[name + ".lora_A.weight"] = rng.standard_normal((r, q_dim)) * 0.05
        t[name + ".lora_B.weight"] = rng.standard_normal((n_embd, r)) * 0.05
    write_safetensors(dirname / "adapter_model.safetensors", t)
    (dirname / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": r, "lora_alpha": 16, "target_modules": ["o_proj"],
         "base_model_name_or_path": "gemma-3-270m"}))
    return dirname


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory) -> Path:
    return make_lora(tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture(scope="session")
def server(tmp_path_factory, lora_dir) -> Server:
    need_server_build()
    s = Server(["--lora", f"tuned={lora_dir}", "--max-body", str(1 << 20)],
               tmp_path_factory.mktemp("serve") / "server.log")
    yield s
    rc = s.stop()
    assert rc == 0, f"slim serve exited {rc}\n{s.log[-4000:]}"
    assert_sanitizer_clean(s.log)


@pytest.fixture(scope="session")
def client(server) -> openai.OpenAI:
    return server.client()


@pytest.fixture(scope="session")
def http(server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=300) as c:
        yield c
