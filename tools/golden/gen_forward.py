#!/usr/bin/env python3
"""Golden next-token data for the forward-pass test, from llama.cpp.

For each prompt: llama.cpp tokenizes it (BOS added where the model's vocab
asks for it) and continues it greedily
for N_GREEDY tokens.  The test sequence is prompt + continuation (>= 64
tokens); teacher-forced over every position of it, llama.cpp's log-partition
(logsumexp over the whole vocabulary) and its TOP_K largest logits with their
ids are recorded.  The test checks slim's logits at every position and that
slim's own greedy continuation of the prompt equals llama.cpp's.

Output: tests/data/forward_golden.bin, little-endian:
  char[8] "SLIMFWD1"; u32 n_prompts, n_vocab, top_k, n_greedy
  per prompt: u32 n_prompt, n_tokens; i32 tokens[n_tokens] (the prompt, then
              the greedy continuation: n_tokens = n_prompt + n_greedy);
              per position: f32 logsumexp; i32 ids[top_k]; f32 logits[top_k]

usage: .venv/bin/python tools/golden/gen_forward.py [MODEL.gguf] [OUT]
  default model, tests/data/forward_golden.bin:
    .venv/bin/python tools/golden/gen_forward.py
  SmolLM2:
    .venv/bin/python tools/golden/gen_forward.py models/smollm2-135m-instruct-q4_1.gguf \
        tests/data/forward_golden_smollm2.bin
needs: pip install llama-cpp-python numpy
"""
import struct
import sys

import numpy as np
from llama_cpp import Llama

TOP_K = 64
N_GREEDY = 32

PROMPTS = [
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg "
    "combined movable metal type, oil-based inks and a wooden press adapted from wine making. "
    "Within fifty years, presses were running in more than two hundred European cities, and the",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number using iteration.\"\"\"\n"
    "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\n"
    "def is_prime(n):\n    \"\"\"Return True if n is a prime number.\"\"\"\n    if n < 2:\n",
    "Photosynthesis is the process by which green plants, algae and some bacteria convert light "
    "energy into chemical energy. During this process, carbon dioxide and water are combined, "
    "using sunlight captured by chlorophyll, to produce glucose and oxygen. The reactions take",
    "Dear Ms. Thompson,\n\nThank you for your letter of 12 March regarding the delayed shipment of "
    "order #48213. I have looked into the matter with our warehouse team, and I am sorry to say "
    "that the delay was caused by an error in our labelling system. We have now",
    "Recipe: classic tomato soup. Ingredients: 1 kg ripe tomatoes, 1 onion, 2 cloves of garlic, "
    "2 tablespoons of olive oil, 500 ml vegetable stock, salt, pepper and a handful of fresh "
    "basil. Method: 1. Chop the onion and garlic. 2. Heat the oil in a large pot and",
    "In mathematics, a group is a set together with a binary operation that is associative, has "
    "an identity element, and in which every element has an inverse. For example, the integers "
    "under addition form a group, because the sum of two integers is an integer, zero is",
    "Le château de Versailles, situé à une vingtaine de kilomètres de Paris, fut la résidence "
    "des rois de France de Louis XIV à Louis XVI. Agrandi à plusieurs reprises, il compte "
    "aujourd'hui plus de deux mille pièces, et ses jardins, dessinés par André Le Nôtre,",
    "Q: What is the capital of Australia?\nA: Canberra.\nQ: What is the largest planet in the "
    "solar system?\nA: Jupiter.\nQ: Who wrote the play Romeo and Juliet?\nA: William "
    "Shakespeare.\nQ: What is the boiling point of water at sea level in degrees Celsius?\nA:",
    "The quarterly report shows that revenue grew by 12 percent compared with the same period "
    "last year, reaching 4.2 million dollars, while operating costs rose by only 3 percent. The "
    "strongest growth came from the online store, where sales of subscription products",
    "Once upon a time, in a small village at the edge of a great forest, there lived an old "
    "clockmaker named Elias. Every morning he opened his shop at seven o'clock, wound every "
    "clock on the walls, and waited for customers who rarely came. One winter evening, a",
]


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "models/gemma-3-270m-q4_k_m.gguf"
    out = sys.argv[2] if len(sys.argv) > 2 else "tests/data/forward_golden.bin"
    llm = Llama(model_path=model, n_ctx=512, n_batch=512, n_threads=2, logits_all=True,
                verbose=False, seed=0)
    n_vocab = llm.n_vocab()
    with open(out, "wb") as f:
        f.write(b"SLIMFWD1")
        f.write(struct.pack("<4I", len(PROMPTS), n_vocab, TOP_K, N_GREEDY))
        for text in PROMPTS:
            prompt = llm.tokenize(text.encode(), add_bos=True, special=False)
            llm.reset()
            llm.eval(prompt)
            greedy = []
            for _ in range(N_GREEDY):
                greedy.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
                llm.eval([greedy[-1]])
            toks = prompt + greedy
            assert len(toks) >= 64, (len(toks), text[:40])
            llm.reset()
            llm.eval(toks)
            scores = np.array(llm.scores[: len(toks)], dtype=np.float64)
            f.write(struct.pack("<2I", len(prompt), len(toks)))
            f.write(np.asarray(toks, dtype="<i4").tobytes())
            for row in scores:
                m = row.max()
                lse = m + np.log(np.exp(row - m).sum())
                ids = np.argsort(-row, kind="stable")[:TOP_K]
                f.write(struct.pack("<f", lse))
                f.write(ids.astype("<i4").tobytes())
                f.write(row[ids].astype("<f4").tobytes())
            print(f"{len(prompt):3d}+{len(greedy)} tokens, greedy: {llm.detokenize(greedy)[:60]!r}")


if __name__ == "__main__":
    main()
