#!/usr/bin/env python3
"""slim serve vs llama.cpp's llama-server: the same model, threads and parallel slots,
the same OpenAI /v1/completions workloads, streamed, at concurrency 1, 4, 16, 64.

Workloads:
  banking77   intent prompts from the banking77 test set (short outputs: max_tokens 8)
  summarize   five banking77 queries to summarise (long outputs: max_tokens 128, ignore_eos)
Reported per server, workload and concurrency: requests/s, output tokens/s, time to
first token and inter-token latency p50/p99 (ms).  Each server is restarted per
concurrency level with that many slots (llama-server -np N -c N*ctx; slim --max-seqs N).

llama-server is built from the vendored llama.cpp source (the same one the other
comparisons use), outside the repository, with native flags:
  python3 tools/bench/serve_bench.py --build-llama /work/peer/serve
Run it under flock so no other timing runs at once (docs/PERFORMANCE.md):
  flock /tmp/slim-bench.lock .venv/bin/python tools/bench/serve_bench.py
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENDORED = Path("/work/peer/llama.cpp-engine/llama_cpp_python-0.3.36/vendor/llama.cpp")


def build_llama(out: Path, src: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    b = out / "b"
    subprocess.run(["nice", "-n", "10", "cmake", "-S", str(src), "-B", str(b),
                    "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF",
                    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_OPENSSL=OFF"], check=True)
    subprocess.run(["nice", "-n", "10", "cmake", "--build", str(b), "--target", "llama-server",
                    "-j2"], check=True)
    return b / "bin" / "llama-server"


def find_banking77(arg: str | None) -> Path:
    for p in [arg, ROOT.parent / "shared/datasets/banking77", "/work/shared/datasets/banking77"]:
        if p and (Path(p) / "test.csv").exists():
            return Path(p)
    sys.exit("banking77 not found: give --banking77 DIR (with test.csv)")


def workloads(data: Path) -> dict[str, list[dict]]:
    with open(data / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    random.Random(0).shuffle(rows)
    intents = json.loads((data / "categories.json").read_text())
    head = ("Classify the online-banking customer query into one of these intents: "
            + ", ".join(intents[:20]) + ", ...\n\n")
    bank = [{"prompt": f"{head}Query: {r['text']}\nIntent:", "max_tokens": 8}
            for r in rows[:512]]
    summ = []
    for i in range(128):
        msgs = "\n".join(f"- {r['text']}" for r in rows[512 + 5 * i: 517 + 5 * i])
        summ.append({"prompt": f"Customer messages received today:\n{msgs}\n\n"
                               "A detailed summary for the support team:\n",
                     "max_tokens": 128, "ignore_eos": True})
    return {"banking77": bank, "summarize": summ}


class Server:
    def __init__(self, cmd: list[str], port: int, log: Path):
        self.port = port
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited {self.proc.returncode} (log: {log})")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{cmd[0]} did not become healthy")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


async def one(client: httpx.AsyncClient, model: str, req: dict) -> dict:
    body = {"model": model, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, **req}
    t0 = time.perf_counter()
    times, usage = [], None
    async with client.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            d = json.loads(line[6:])
            if d.get("usage"):
                usage = d["usage"]
            for c in d.get("choices") or []:
                if c.get("text"):
                    times.append(time.perf_counter())
    n_out = usage["completion_tokens"] if usage else len(times)
    return {"ttft": (times[0] - t0) if times else float("nan"),
            "itl": [b - a for a, b in zip(times, times[1:])], "n_out": n_out,
            "t0": t0, "t1": time.perf_counter()}


async def level(url: str, model: str, reqs: list[dict], conc: int) -> dict:
    # A connection per request: llama-server (cpp-httplib) may close a kept-alive
    # connection just as the client reuses it ("Server disconnected without sending a
    # response" on its summarize workload at c=1); loopback connects cost both servers alike.
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one(client, model, {**reqs[0], "max_tokens": 2})  # warm-up
        sem = asyncio.Semaphore(conc)

        async def run(q):
            async with sem:
                return await one(client, model, q)

        t0 = time.perf_counter()
        res = await asyncio.gather(*(run(q) for q in reqs))
        wall = time.perf_counter() - t0
    ttft = sorted(r["ttft"] for r in res)
    itl = sorted(x for r in res for x in r["itl"])

    def pct(a, p):
        return a[min(len(a) - 1, int(p / 100 * len(a)))] * 1e3 if a else float("nan")

    return {"requests": len(res), "wall_s": wall, "req_s": len(res) / wall,
            "out_tok_s": sum(r["n_out"] for r in res) / wall,
            "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99),
            "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models/gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--slim", default=str(ROOT / "build/slim"))
    ap.add_argument("--llama-server", default="/work/peer/serve/b/bin/llama-server")
    ap.add_argument("--build-llama", metavar="DIR",
                    help="build llama-server from the vendored llama.cpp into DIR/b first")
    ap.add_argument("--llama-src", default=str(VENDORED))
    ap.add_argument("--banking77")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conc", default="1,4,16,64")
    ap.add_argument("--workloads", default="banking77,summarize")
    ap.add_argument("--servers", default="slim,llama")
    ap.add_argument("--requests", type=int, default=0,
                    help="requests per level (0: max(8, 4 x concurrency) for banking77, "
                         "max(4, concurrency) for summarize)")
    ap.add_argument("--ctx-per-slot", type=int, default=512)
    ap.add_argument("--port", type=int, default=18400)
    ap.add_argument("--llama-fa", default="on", choices=["on", "off", "auto"],
                    help="llama-server's -fa (on: the faster of on/off for this model on this "
                         "machine, measured: docs/PERFORMANCE.md)")
    ap.add_argument("--llama-extra", default="",
                    help="more llama-server flags (one string, split on spaces)")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    llama_bin = a.llama_server
    if a.build_llama:
        llama_bin = str(build_llama(Path(a.build_llama), Path(a.llama_src)))
    work = workloads(find_banking77(a.banking77))
    t_start = time.monotonic()
    log = Path("/tmp/serve_bench.log")
    results = []
    print(f"model {a.model}, {a.threads} threads; log {log}", flush=True)
    for conc in [int(x) for x in a.conc.split(",")]:
        for name in a.servers.split(","):
            if name == "slim":
                cmd = [a.slim, "serve", "-m", a.model, "--port", str(a.port), "-t",
                       str(a.threads), "--max-seqs", str(conc), "--served-model-name", "m",
                       "-c", str(a.ctx_per_slot),
                       "--kv-budget", str(max(conc, 4) * a.ctx_per_slot)]
            else:
                cmd = [llama_bin, "-m", a.model, "--port", str(a.port), "-t", str(a.threads),
                       "-tb", str(a.threads), "-np", str(conc), "-c",
                       str(max(conc, 4) * a.ctx_per_slot), "--alias", "m", "-cb",
                       "-kvu", "-fa", a.llama_fa, "--swa-full", "--no-webui",
                       "--log-disable", *a.llama_extra.split()]
            print("  $ " + " ".join(cmd), flush=True)
            srv = Server(cmd, a.port, log)
            try:
                for wl in a.workloads.split(","):
                    reqs = work[wl]
                    n = a.requests or (max(8, 4 * conc) if wl == "banking77" else max(4, conc))
                    reqs = (reqs * (n // len(reqs) + 1))[:n]
                    r = asyncio.run(level(f"http://127.0.0.1:{a.port}", "m", reqs, conc))
                    r.update(server=name, workload=wl, conc=conc)
                    results.append(r)
                    print(f"{name:6s} {wl:10s} c={conc:3d}: {r['req_s']:7.2f} req/s "
                          f"{r['out_tok_s']:8.1f} tok/s  TTFT p50 {r['ttft_p50']:7.1f} "
                          f"p99 {r['ttft_p99']:7.1f} ms  ITL p50 {r['itl_p50']:6.1f} "
                          f"p99 {r['itl_p99']:7.1f} ms  ({r['requests']} requests, "
                          f"{r['wall_s']:.1f} s)", flush=True)
            finally:
                srv.stop()
    by = {(r["workload"], r["conc"], r["server"]): r for r in results}
    print(f"\ntotal {time.monotonic() - t_start:.0f} s")
    print("\n| workload | c | server | req/s | out tok/s | slim / llama | TTFT p50 / p99 ms "
          "| ITL p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: (r["workload"], r["conc"], r["server"] != "slim")):
        o = by.get((r["workload"], r["conc"], "llama"))
        ratio = (f"**{r['out_tok_s'] / o['out_tok_s']:.2f}x**"
                 if r["server"] == "slim" and o else "")
        name = "llama-server" if r["server"] == "llama" else r["server"]
        print(f"| {r['workload']} | {r['conc']} | {name} | {r['req_s']:.2f} | "
              f"{r['out_tok_s']:.1f} | {ratio} | {r['ttft_p50']:.0f} / {r['ttft_p99']:.0f} | "
              f"{r['itl_p50']:.1f} / {r['itl_p99']:.1f} |")
    for (wl, c, s), r in sorted(by.items()):
        o = by.get((wl, c, "llama"))
        if s == "slim" and o:
            print(f"{wl} c={c}: slim/llama-server throughput {r['out_tok_s'] / o['out_tok_s']:.2f}x, "
                  f"TTFT p50 {r['ttft_p50']:.0f} vs {o['ttft_p50']:.0f} ms")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
