"""Constrained generation and label scoring through the binding: outputs
checked by Python's own parsers (json, re), the Engine against Model, and
score() against log-softmax sums of Model.logits."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import slim

PROMPT = "Here is a person as JSON:"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "answer": {"enum": ["yes", "no"]},
    },
    "required": ["name", "answer"],
    "additionalProperties": False,
}


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def test_json_schema_regex_choices_grammar(model: slim.Model) -> None:
    out = model.generate(PROMPT, 60, temperature=0, json_schema=SCHEMA)
    v = json.loads(out)
    assert set(v) == {"name", "answer"} and len(v["name"]) <= 12 and v["answer"] in ("yes", "no")
    # Any JSON object: this base model may not close it within the budget;
    # what it wrote is then a prefix of one (json says where it ran out).
    c = model.completion(PROMPT, 80, temperature=0, json_object=True)
    obj = c.text()
    if c.finish_reason == "stop":
        assert isinstance(json.loads(obj), dict)
    else:
        with pytest.raises(json.JSONDecodeError) as err:
            json.loads(obj)
        assert obj.startswith("{") and err.value.pos > 0
    phone = model.generate("Call me at", 20, temperature=0.8, seed=1, regex=r"[0-9]{3}-[0-9]{4}")
    assert re.fullmatch(r"[0-9]{3}-[0-9]{4}", phone)
    colour = model.generate("My favourite colour is", 10, temperature=0.8, seed=2,
                            choices=["red", "green", "blue"])
    assert colour in ("red", "green", "blue")
    yn = model.generate("Is water wet?", 5, temperature=0, grammar='root ::= "yes" | "no"')
    assert yn in ("yes", "no")
    # A compiled constraint, reused; streaming gives the same text.
    c = model.constraint("json_schema", SCHEMA)
    assert "".join(model.generate(PROMPT, 60, temperature=0, constraint=c, stream=True)) == out
    with pytest.raises(slim.InvalidArgumentError, match="one constraint at a time"):
        model.generate(PROMPT, 4, regex="a", choices=["b"])
    # The class methods give the same compilations as the keywords.
    g = slim.Constraint.grammar(model, 'root ::= "yes" | "no"')
    assert model.generate("Is water wet?", 5, temperature=0, constraint=g) == yn
    j = slim.Constraint.json_object(model)
    assert model.generate(PROMPT, 80, temperature=0, constraint=j) == obj


def test_driving_a_constraint(model: slim.Model) -> None:
    c = slim.Constraint.choices(model, ["yes", "no"])
    s = c.start()
    allowed = c.allowed(s)
    assert allowed.shape == (model.n_vocab,) and allowed.dtype == bool
    ok = set(np.flatnonzero(allowed).tolist())
    yes = model.tokenize("yes", add_special=False)
    assert yes[0] in ok and model.tokenize(" maybe", add_special=False)[0] not in ok
    assert not c.accepting(s) and c.forced(s) == []
    s2 = s
    for t in yes:
        s2 = c.advance(s2, t)
    assert s2 >= 0 and c.accepting(s2)
    assert c.advance(s, model.tokenize(" maybe", add_special=False)[0]) == -1  # dead
    f = slim.Constraint.regex(model, "hello world, how are you[0-9]")
    # The forced text as the tokenizer writes it, its last token held back.
    assert model.detokenize(f.forced(f.start())) == "hello world, how are"
    assert repr(c) == "slim.Constraint(choices)"
    c.close()
    with pytest.raises(ValueError, match="closed"):
        c.start()


def test_constraint_errors_carry_slims_message(model: slim.Model) -> None:
    with pytest.raises(slim.FormatError, match="gbnf:1"):
        model.generate(PROMPT, 4, grammar="root ::= (")
    with pytest.raises(slim.SlimError):
        slim.Constraint.json_schema(model, '{"type": "object", "properties": ')
    with pytest.raises(slim.InvalidArgumentError, match="unknown constraint kind"):
        model.constraint("xml", "<a/>")


def test_engine_constraints_equal_model(model: slim.Model) -> None:
    with slim.Engine(model, n_threads=2, kv_tokens=4096, n_ctx=512) as e:
        reqs = [
            e.submit(PROMPT, 60, temperature=0, json_schema=SCHEMA),
            e.submit("Call me at", 20, temperature=0, regex=r"[0-9]{3}-[0-9]{4}"),
            e.submit("My favourite colour is", 10, temperature=0, choices=["red", "green", "blue"]),
            e.submit(PROMPT, 8, temperature=0),  # unconstrained, in the same steps
        ]
        got = [r.text(timeout=120) for r in reqs]
    assert got[0] == model.generate(PROMPT, 60, temperature=0, json_schema=SCHEMA)
    assert got[1] == model.generate("Call me at", 20, temperature=0, regex=r"[0-9]{3}-[0-9]{4}")
    assert got[2] == model.generate("My favourite colour is", 10, temperature=0,
                                    choices=["red", "green", "blue"])
    assert got[3] == model.generate(PROMPT, 8, temperature=0)
    assert reqs[0].result().finish_reason == "eos"


def test_score_against_logits(model: slim.Model) -> None:
    prompt = "The capital of France is"
    labels = [" Paris", " London", " Berlin", " the city of Paris"]
    r = model.score(prompt, labels)
    assert isinstance(r, slim.ScoreResult) and r.labels == labels
    assert r.label == " Paris" and r.argmax == 0
    assert sum(r.probs) == pytest.approx(1.0, abs=1e-6)
    assert r.as_dict()[" Paris"] == r.probs[0]
    ids = model.tokenize(prompt)
    for i, lab in enumerate(labels):
        lt = model.tokenize(lab, add_special=False)
        lp = log_softmax(model.logits(ids + lt[:-1]))
        ref = [lp[len(ids) - 1 + j][t] for j, t in enumerate(lt)]
        assert len(r.token_logprobs[i]) == len(lt)
        assert np.allclose(r.token_logprobs[i], ref, atol=2e-3)
        assert r.logprobs[i] == pytest.approx(sum(ref), abs=5e-3)
    with pytest.raises(slim.InvalidArgumentError, match="at least one label"):
        model.score(prompt, [])


def test_openai_response_format_and_grammar(smollm2: slim.Model) -> None:
    # json_object allows any nesting: a prompt the model answers and closes within
    # max_tokens (greedy SmolLM2 nests {"name":{"name":... past 60 tokens on "Give me a
    # person as JSON."; a cut-off object cannot parse, whatever the engine).
    ok = [{"role": "user", "content": 'Reply with a JSON object with the key "ok" set to true.'}]
    r = smollm2.create_chat_completion(ok, max_tokens=60, temperature=0,
                                       response_format={"type": "json_object"})
    assert r["choices"][0]["finish_reason"] == "stop", r["choices"][0]
    assert isinstance(json.loads(r["choices"][0]["message"]["content"]), dict)
    r = smollm2.create_chat_completion(ok, max_tokens=2, temperature=0,
                                       response_format={"type": "json_object"})
    assert r["choices"][0]["finish_reason"] == "length"
    assert r["choices"][0]["message"]["content"].startswith("{")
    msgs = [{"role": "user", "content": "Give me a person as JSON."}]
    r = smollm2.create_chat_completion(
        msgs, max_tokens=60, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMA}})
    assert set(json.loads(r["choices"][0]["message"]["content"])) == {"name", "answer"}
    c = smollm2.create_completion("Is water wet? Answer:", max_tokens=4, temperature=0,
                                  grammar='root ::= " yes" | " no"')
    assert c["choices"][0]["text"] in (" yes", " no")
    with pytest.raises(slim.InvalidArgumentError, match="not supported"):
        smollm2.create_chat_completion(msgs, response_format={"type": "xml"})
