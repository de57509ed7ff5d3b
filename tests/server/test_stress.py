"""Concurrency and faults (loopback only, bounded): 1,000 requests at concurrency 64, a
tenth of them malformed (invalid JSON, invalid UTF-8, wrong types, oversized bodies,
truncated bodies, bodies sent slowly, clients that disconnect mid-stream).  Every
well-formed request completes with the greedy text the same request gave alone; every
malformed one gets its 4xx; the server's RSS afterwards is within 10% of before and its
KV blocks are all free again.  SLIM_SERVE_STRESS_N changes the request count."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import random
import socket
import time

import httpx

from conftest import MODEL_NAME

N = int(os.environ.get("SLIM_SERVE_STRESS_N", "1000"))
CONC = 64
MAX_TOKENS = 6
PROMPTS = [f"{w} number {i} is" for i, w in enumerate(
    ["The color", "My favourite fruit", "The capital", "A good name", "The next step",
     "Her lucky number", "The best song", "Our plan", "The weather", "His answer",
     "The first word", "A quick fox", "The old tree", "The winner", "The largest city",
     "The secret", "Tomorrow's task", "The river", "A famous painter", "The last train",
     "The main idea", "Dinner tonight", "The code", "The shortest path"])]


def body(kind: str, i: int, stream: bool = False) -> dict:
    if kind == "chat":
        return {"model": MODEL_NAME, "messages": [{"role": "user", "content": PROMPTS[i]}],
                "max_tokens": MAX_TOKENS, "temperature": 0, "stream": stream}
    return {"model": MODEL_NAME, "prompt": PROMPTS[i], "max_tokens": MAX_TOKENS,
            "temperature": 0, "stream": stream}


def kind_of(i: int) -> str:
    return "chat" if i % 3 == 2 else "completion"


def path_of(kind: str) -> str:
    return "/v1/chat/completions" if kind == "chat" else "/v1/completions"


def text_of(kind: str, r: dict) -> str:
    c = r["choices"][0]
    return c["message"]["content"] if kind == "chat" else c["text"]


def sse_text(kind: str, raw: str) -> str:
    out = []
    for line in raw.split("\n"):
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for c in json.loads(line[6:])["choices"]:
            out.append((c.get("delta") or {}).get("content") or "" if kind == "chat"
                       else c["text"])
    assert raw.rstrip().endswith("data: [DONE]"), raw[-200:]
    return "".join(out)


def raw_http(port: int, head: bytes, chunks: list[bytes], delay: float = 0.0,
             read: bool = True) -> int | None:
    """Send head + chunks over a plain socket (pausing `delay` between chunks); the
    response's status, or None when not reading / nothing came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall(head)
        for c in chunks:
            if delay:
                time.sleep(delay)
            s.sendall(c)
        if not read:
            return None
        data = b""
        while b"\r\n" not in data:
            got = s.recv(4096)
            if not got:
                return None
            data += got
        return int(data.split(b" ", 2)[1])


def post_head(path: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def test_concurrency_and_faults(server):
    port = server.port
    limits = httpx.Limits(max_connections=CONC, max_keepalive_connections=CONC)
    with httpx.Client(base_url=server.url, timeout=600, limits=limits) as http:
        # The greedy reference: each distinct request alone, one at a time.
        ref = {}
        for i in range(len(PROMPTS)):
            k = kind_of(i)
            r = http.post(path_of(k), json=body(k, i))
            assert r.status_code == 200, r.text
            ref[i] = text_of(k, r.json())

        def good(i: int, stream: bool) -> tuple[str, object]:
            k = kind_of(i)
            if stream:
                with http.stream("POST", path_of(k), json=body(k, i, True)) as r:
                    raw = r.read().decode()
                    assert r.status_code == 200, raw
                return "good", (i, sse_text(k, raw))
            r = http.post(path_of(k), json=body(k, i))
            assert r.status_code == 200, r.text
            return "good", (i, text_of(k, r.json()))

        # Warm-up at full concurrency (touches the KV pool and the threads' stacks) before
        # the RSS baseline.
        with cf.ThreadPoolExecutor(CONC) as ex:
            for f in [ex.submit(good, j % len(PROMPTS), j % 2 == 0) for j in range(2 * CONC)]:
                f.result()
        rss0 = server.rss_kib()

        def bad(kind: str, j: int):
            p = "/v1/completions"
            if kind == "json":
                r = http.post(p, content=b'{"prompt": "x", "max_tokens": 4'[: 5 + j % 20],
                              headers={"content-type": "application/json"})
                return kind, r.status_code
            if kind == "utf8":
                r = http.post(p, content=b'{"prompt": "abc\xc3\x28 \xff", "max_tokens": 2}',
                              headers={"content-type": "application/json"})
                return kind, r.status_code
            if kind == "types":
                fields = [{"max_tokens": "4"}, {"temperature": [1]}, {"n": 0}, {"stop": 5},
                          {"prompt": {"a": 1}}, {"logprobs": 99}, {"stream": "yes"}]
                b = {"model": MODEL_NAME, "prompt": "x", **fields[j % len(fields)]}
                return kind, http.post(p, json=b).status_code
            if kind == "oversized":
                if j % 2:  # declared too large: refused before the body
                    return kind, raw_http(port, post_head(p, 50 << 20), [], read=True)
                big = b'{"prompt": "' + b"x" * (3 << 19) + b'"}'  # 1.5 MiB > 1 MiB
                return kind, http.post(p, content=big,
                                       headers={"content-type": "application/json"}).status_code
            if kind == "truncated":  # the client gives up halfway through its body
                b = json.dumps(body("completion", 0)).encode()
                raw_http(port, post_head(p, len(b)), [b[: len(b) // 2]], read=False)
                return kind, None
            if kind == "slow":  # a valid body in pieces, slowly: served normally
                i = j % len(PROMPTS)
                k = kind_of(i)
                b = json.dumps(body(k, i)).encode()
                pieces = [b[x: x + 16] for x in range(0, len(b), 16)]
                st = raw_http(port, post_head(path_of(k), len(b), "Connection: close\r\n"),
                              pieces, delay=0.05)
                return kind, st
            if kind == "disconnect":  # a streaming client that leaves after the first event
                b = body("completion", j % len(PROMPTS), True)
                b["max_tokens"] = 200
                with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
                    data = json.dumps(b).encode()
                    s.sendall(post_head(p, len(data)) + data)
                    got = b""
                    while b"data: " not in got:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    status = int(got.split(b" ", 2)[1]) if got else None
                return kind, status
            raise AssertionError(kind)

        n_bad = N // 10
        kinds = ["json"] * 15 + ["utf8"] * 15 + ["types"] * 15 + ["oversized"] * 15 + \
            ["truncated"] * 10 + ["slow"] * 10 + ["disconnect"] * 20
        bad_kinds = [kinds[x % len(kinds)] for x in range(n_bad)]
        tasks = [("good", j) for j in range(N - n_bad)] + list(enumerate(bad_kinds))
        random.Random(1).shuffle(tasks)
        t0 = time.monotonic()
        results = []
        with cf.ThreadPoolExecutor(CONC) as ex:
            futs = []
            for a, b2 in tasks:
                if a == "good":
                    futs.append(ex.submit(good, b2 % len(PROMPTS), b2 % 3 == 1))
                else:
                    futs.append(ex.submit(bad, b2, a))
            for f in futs:
                results.append(f.result())
        took = time.monotonic() - t0
        expect = {"json": 400, "utf8": 400, "types": 400, "oversized": 413, "truncated": None,
                  "slow": 200, "disconnect": 200}
        n_good = 0
        for kind, v in results:
            if kind == "good":
                i, text = v
                assert text == ref[i], (i, text, ref[i])  # byte-identical to alone
                n_good += 1
            else:
                assert v == expect[kind], (kind, v)
        assert n_good == N - n_bad
        # Every request's KV blocks are freed (the disconnected ones cancelled).
        deadline = time.monotonic() + 30
        while True:
            m = http.get("/metrics").text
            vals = {ln.split("{")[0]: float(ln.rsplit(" ", 1)[1]) for ln in m.splitlines()
                    if ln.startswith("vllm:") and "{" in ln}
            if (vals["vllm:num_requests_running"] == 0 and vals["vllm:num_requests_waiting"] == 0
                    and vals["vllm:kv_cache_usage_perc"] == 0):
                break
            assert time.monotonic() < deadline, m
            time.sleep(0.2)
        assert http.get("/health").status_code == 200
        rss1 = server.rss_kib()
        print(f"\n{N} requests ({n_bad} malformed) at concurrency {CONC} in {took:.1f} s; "
              f"RSS {rss0} KiB before, {rss1} KiB after ({100.0 * (rss1 - rss0) / rss0:+.1f}%)")
        assert abs(rss1 - rss0) <= 0.10 * rss0, (rss0, rss1)
