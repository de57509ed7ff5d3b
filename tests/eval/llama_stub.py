#!/usr/bin/env python3
"""A minimal OpenAI-style /v1/completions server over llama-cpp-python, for
checking `slim eval --endpoint` (its wiring, and its label scores against
llama.cpp as an independent reference).  Not a server for anything else.

  prompt as token ids + echo + logprobs (max_tokens 0): the prompt tokens'
      log-probabilities, as `slim eval` scores labels;
  prompt as text: greedy generation with max_tokens and stop.

usage: /work/venvs/pyslim/bin/python tests/eval/llama_stub.py MODEL.gguf PORT [API_KEY]
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

import numpy as np
from llama_cpp import Llama

llm = Llama(model_path=sys.argv[1], n_ctx=2048, logits_all=True, verbose=False, n_threads=2)
KEY = sys.argv[3] if len(sys.argv) > 3 else None
lock = threading.Lock()


def score(tokens):
    llm.reset()
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)
    m = logits.max(axis=1, keepdims=True)
    lsm = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return [None] + [float(lsm[k - 1, tokens[k]]) for k in range(1, len(tokens))]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        if KEY and self.headers.get("Authorization") != f"Bearer {KEY}":
            self.send_error(401, "bad key")
            return
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock:
            p = req["prompt"]
            if isinstance(p, list):
                lp = score(p)
                choice = {"text": "", "index": 0, "finish_reason": "length",
                          "logprobs": {"token_logprobs": lp, "tokens": [str(t) for t in p]}}
                usage = {"prompt_tokens": len(p), "completion_tokens": 0}
            else:
                out = llm.create_completion(p, max_tokens=req.get("max_tokens", 16),
                                            temperature=0, stop=req.get("stop"))
                choice = out["choices"][0]
                usage = out["usage"]
        body = json.dumps({"object": "text_completion", "choices": [choice],
                           "usage": usage}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
