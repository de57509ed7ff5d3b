#!/usr/bin/env python3
"""Reference renderings of the chat templates slim renders natively
(lib/runtime/chat.c), made by jinja2 on each family's real template string.

Writes tests/data/chat_golden.txt (hex-escaped, tab-separated):
    T  NAME  FAMILY  TEMPLATE_HEX                 a template and the family slim must detect
    C  NAME  ADD_GEN  ROLES  CONTENTS_HEX  OUT    a conversation rendered with template NAME:
                                                  ROLES and CONTENTS_HEX comma-separated,
                                                  OUT the rendering's hex, or "ERR" when the
                                                  template raises (slim: SLIM_ERR_INVALID_ARG)
The environment is the one transformers' apply_chat_template uses
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
raise_exception).  bos_token is "" (slim leaves BOS to the tokenizer, as
llama.cpp does); eos_token is the model's.

Usage: .venv/bin/python tools/golden/gen_chat.py [SMOLLM2_GGUF] [OUT]
"""
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

SMOLLM2 = sys.argv[1] if len(sys.argv) > 1 else "models/smollm2-135m-instruct-q4_1.gguf"
OUT = sys.argv[2] if len(sys.argv) > 2 else "tests/data/chat_golden.txt"


def smollm2_template(path):
    """HuggingFaceTB/SmolLM2-135M-Instruct: the GGUF's tokenizer.chat_template."""
    from gguf import GGUFReader

    f = GGUFReader(path).fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


# teknium/OpenHermes-2.5-Mistral-7B: plain ChatML with no default system prompt.
# Source: llama.cpp tests/test-chat-template.cpp (ggml-org/llama.cpp), the
# template of that model's tokenizer_config.json.
CHATML_PLAIN = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template, as
# printed from the (identical) unsloth/llama-3-8b-instruct tokenizer in a
# public write-up and as used for QuantFactory/Meta-Llama-3-8B-Instruct-GGUF.
# (Llama 3.1+ templates add a dated system header; slim renders the 3.0 form,
# as llama.cpp's built-in "llama3" does.)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\n\n' }}{% endif %}"
)

# google/gemma-3-*-it tokenizer_config.json chat_template (a copy is the
# gemma3 fixture of mesh-llm's prompt template tests, bos_token "<bos>").
GEMMA3 = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json chat_template (the
# tool-calling version; copied verbatim in gorilla's BFCL MistralFCHandler).
MISTRAL_V3 = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# mistralai/Mistral-Nemo-Instruct-2407 chat_template, as dumped from the
# tokenizer.chat_template of a Mistral-Nemo-Instruct-2407 GGUF (tekken).
MISTRAL_TEKKEN = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS][" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST]" + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST]" + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif (message.tool_calls is defined and message.tool_calls is not none) %}
        {{- "[TOOL_CALLS][" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- message["content"] + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS]{"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# microsoft/Phi-3.5-mini-instruct tokenizer_config.json chat_template (also
# Phi-3-mini/medium after their 2024 update); eos_token "<|endoftext|>".
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

# microsoft/phi-4 tokenizer_config.json chat_template (llama.cpp
# tests/test-chat-template.cpp carries the same string as "phi-4").
PHI4 = (
    "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system"
    "<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|><|im_start|>assistant"
    "<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + "
    "'<|im_end|>'}}{% endif %}{% endfor %}"
)

SYS = "You are a helpful assistant"
# Conversations: (roles and contents, add_generation_prompt).  Contents carry
# leading/trailing ASCII and Unicode whitespace where templates trim.
CONVS = [
    ([("user", "Hello")], True),
    ([("user", "Hello")], False),
    ([("system", SYS), ("user", "Hello")], True),
    ([("user", "Hello"), ("assistant", "  Hi there \n"), ("user", "Who are you?")], True),
    ([("system", SYS), ("user", "Hello"), ("assistant", "Hi there"), ("user", "Who are you"),
      ("assistant", "   I am an assistant   "), ("user", "Another question")], True),
    ([("user", "Hello"), ("assistant", "Hi there")], False),
    ([("system", " Tu es un assistant. 日本語で答えて。\n"), ("user", "\u3000Ça va ? 🚀 naïve\t"),
      ("assistant", "\u00a0Très bien ✓ — merci\u2003"), ("user", "Et toi ? ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")], True),
    ([("system", " Tu es un assistant. 日本語で答えて。\n"), ("user", "\u3000Ça va ? 🚀 naïve\t"),
      ("assistant", "\u00a0Très bien ✓ — merci\u2003")], False),
    ([("system", ""), ("user", "empty system")], True),
    ([("user", "line one\nline two\n\n"), ("assistant", "\n\nreply\n"), ("user", "x")], True),
    # The shape of the scripted 3-turn `slim chat` test (test_chat.c).
    ([("user", "What is the capital of France?"), ("assistant", "The capital of France is Paris."),
      ("user", "And of Italy?"), ("assistant", "Rome."), ("user", "Thanks. Say goodbye.")], True),
    # Role errors: Gemma and Mistral raise; the others render.
    ([("user", "a"), ("user", "b")], True),
    ([("assistant", "a"), ("user", "b")], True),
    ([("system", SYS), ("assistant", "a")], True),
]

TEMPLATES = [
    # name, family slim must detect, template, eos_token
    ("smollm2", "chatml", smollm2_template(SMOLLM2), "<|im_end|>"),
    ("openhermes-chatml", "chatml", CHATML_PLAIN, "<|im_end|>"),
    ("llama3", "llama3", LLAMA3, "<|eot_id|>"),
    ("gemma3", "gemma", GEMMA3, "<eos>"),
    ("mistral-v3", "mistral-v3", MISTRAL_V3, "</s>"),
    ("mistral-nemo", "mistral-tekken", MISTRAL_TEKKEN, "</s>"),
    ("phi3.5", "phi3", PHI3, "<|endoftext|>"),
    ("phi4", "phi4", PHI4, "<|im_end|>"),
]


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=["jinja2.ext.loopcontrols"])
ENV.globals["raise_exception"] = raise_exception


def hx(s):
    return s.encode("utf-8").hex()


def main():
    lines = [f"# generated by tools/golden/gen_chat.py with jinja2 {jinja2.__version__}; do not edit"]
    n = 0
    for name, family, tmpl, eos in TEMPLATES:
        lines.append("\t".join(["T", name, family, hx(tmpl)]))
        compiled = ENV.from_string(tmpl)
        for msgs, gen in CONVS:
            try:
                out = hx(compiled.render(messages=[{"role": r, "content": c} for r, c in msgs],
                                         add_generation_prompt=gen, bos_token="", eos_token=eos))
            except jinja2.exceptions.TemplateError:
                out = "ERR"
            lines.append("\t".join(["C", name, "1" if gen else "0",
                                    ",".join(r for r, _ in msgs),
                                    ",".join(hx(c) for _, c in msgs) or "-", out]))
            n += 1
    with open(OUT, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(TEMPLATES)} templates, {n} conversations")


if __name__ == "__main__":
    main()
