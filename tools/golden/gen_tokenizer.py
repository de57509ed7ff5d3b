#!/usr/bin/env python3
"""Golden tokenizer data for tests/unit/test_tokenizer.c, from llama.cpp.

Tokenizes a deterministic list of test strings (hand-written cases plus
programmatic variations) with llama.cpp, through llama-cpp-python, on the same
GGUF that the unit tests load, and writes tests/data/tokenizer_golden.txt.

Usage: .venv/bin/python tools/golden/gen_tokenizer.py [model.gguf] [out_dir] [smollm2.gguf]

Writes:
  tokenizer_golden.txt      the model's own vocabulary (Gemma 3: no space prefix)
  tokenizer_golden_spm.txt  a small synthetic Llama-2-style vocabulary (space
                            prefix, add_bos by default), its tokens included as
                            "V <hex text> <score> <type>" lines
  tokenizer_golden_phi3.txt the same vocabulary with general.name "Phi-3 ..."
                            (llama.cpp strips whitespace after special tokens
                            there), on the strings with markup or spacing
  tokenizer_golden_smollm2.txt  byte-level BPE: SmolLM2-135M's own vocabulary
                            (tokenizer.ggml.pre "smollm"; the model's path is
                            the third argument, else $SLIM_TEST_MODEL_SMOLLM2,
                            else models/smollm2-135m-instruct-q4_1.gguf)
  tokenizer_golden_bpe_<pre>.txt  SmolLM2's vocabulary and merges with another
                            tokenizer.ggml.pre (gpt-2, llama-bpe, dbrx, qwen2,
                            tekken, gpt-4o, default) and no add_bos_token /
                            add_space_prefix keys, so that the pre-tokenizer's
                            own defaults apply: llama.cpp is the oracle for each
                            pre-tokenizer's splitting.  A "pre <name>" line
                            names it; the test rebuilds the GGUF in memory.

Format (one record per line, fields separated by TABs):
  # ...                             comment
  model <file name> <n_vocab>
  eog <id> <id> ...                 llama_vocab_is_eog() over the whole vocab
  T <hex text> <idsA> <idsP> <dA0> <dA1> <dP0> <dP1>
     hex text: the test string's bytes in hex ("" for the empty string)
     idsA: llama_tokenize(add_special=True,  parse_special=False), ids joined by ","
     idsP: llama_tokenize(add_special=False, parse_special=True)
     dXn:  llama_detokenize(idsX, remove_special=False, unparse_special=n), hex;
           "=" where it is the text itself (the BPE files only)
The strings are kept as bytes, so invalid UTF-8 survives.
"""

import ctypes
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def hand_written():
    s = []
    a = s.append
    # ---- empty, whitespace ----
    for t in ["", " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r",
              " \n ", "\n \n", " \t\n", "\t \t", "     \n     ", " " * 31, " " * 32, " " * 33,
              " " * 70, "\n" * 31, "\n" * 40, "\t" * 31, "\t" * 35, "\v\f", "\u00a0", "\u3000",
              "a b", "a  b", "a   b", "a\tb", "a\nb", "a\n\nb", "a \n b", "  leading", "trailing  ",
              "  both  ", " x", "x ", "\nx", "x\n", "\tx\t"]:
        a(t)
    # ---- ASCII prose ----
    for t in ["Hello", "Hello world", "hello world", "Hello, world!", "HELLO WORLD",
              "The quick brown fox jumps over the lazy dog.",
              "The three primary colors are",
              "It's a dog's life, isn't it? We'll see; they'd've known.",
              "I don't know what you're talking about.",
              "Mr. Smith went to Washington D.C. on Jan. 5th.",
              "Once upon a time, in a land far, far away, there lived a king.",
              "a", "b", "z", "A", "I", "ab", "abc", "the", "The", " the", "  the",
              "antidisestablishmentarianism", "Pneumonoultramicroscopicsilicovolcanoconiosis",
              "supercalifragilisticexpialidocious", "internationalization", "xyzzyplughqwerty",
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababab",
              "CamelCaseIdentifierName", "snake_case_identifier_name", "SCREAMING_SNAKE_CASE",
              "e-mail: someone@example.com", "https://www.example.com/path?q=1&r=two#frag",
              "C:\\Windows\\System32\\drivers\\etc\\hosts", "/usr/local/bin/python3",
              "user@host:~$ ls -la | grep foo > out.txt 2>&1"]:
        a(t)
    # ---- numbers and punctuation ----
    for t in ["0", "1", "12", "123", "1234", "12345", "123456789", "1234567890123456789",
              "3.14159", "-42", "+7", "1,000,000", "1.000.000,50", "1e-10", "0x1F", "0b1010",
              "2024-01-15", "12:34:56", "$100", "€50", "£20", "¥1000", "50%", "#1", "1st 2nd 3rd",
              "!!!", "???", "...", "…", "?!", "--", "---", "—", "–", "''", '""', "``", "«»", "„“",
              "()", "[]", "{}", "<>", "<<>>", "(a)", "[b]", "{c}", "@#$%^&*", "~`|\\", ";:,.",
              "!@#$%^&*()_+-=[]{}|;':\",./<>?", "a.b.c", "a,b,c", "a;b;c", "3 + 4 = 7",
              "x^2 + y^2 = z^2", "π ≈ 3.14", "∑ ∫ √ ∞ ≠ ≤ ≥", "½ ¼ ¾", "①②③", "Ⅻ"]:
        a(t)
    # ---- accents, European scripts ----
    for t in ["café", "naïve", "résumé", "Ångström", "Zürich", "Straße", "Æsir", "øre",
              "señor", "niño", "Ελληνικά", "Привет, мир!", "Здравствуйте", "Українська мова",
              "Čeština", "Łódź", "Ğüşöçİı", "İstanbul", "ﬁ ligature", "ǅ", "ß ẞ",
              "Ça va? Oui, ça va très bien.", "Die Würde des Menschen ist unantastbar.",
              "El niño comió una manzana.", "Ο Σωκράτης ήταν φιλόσοφος."]:
        a(t)
    # ---- CJK, other scripts ----
    for t in ["你好", "你好，世界！", "中华人民共和国", "我爱自然语言处理", "日本語", "こんにちは",
              "カタカナ", "ひらがなとカタカナと漢字", "東京都", "한국어", "안녕하세요", "세종대왕",
              "ภาษาไทย", "สวัสดีครับ", "हिन्दी", "नमस्ते दुनिया", "বাংলা", "தமிழ்", "ગુજરાતી",
              "ქართული", "Հայերեն", "አማርኛ", "ᚠᛇᚻ", "𓀀𓀁", "ꦗꦮ", "ᠮᠣᠩᠭᠣᠯ", "ⴰⵣⵓⵍ",
              "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝐁𝐨𝐥𝐝", "Ｆｕｌｌｗｉｄｔｈ", "ｶﾀｶﾅ"]:
        a(t)
    # ---- RTL, combining marks ----
    for t in ["مرحبا بالعالم", "العربية", "שלום עולם", "עברית", "فارسی", "اردو",
              "Hello مرحبا world", "abc שלום def", "\u202eRTL override\u202c", "\u200f\u200e",
              "e\u0301", "a\u0308", "n\u0303", "\u0301", "o\u0302\u0323", "Z\u0351\u0352\u0353",
              "ạ̀", "ṩ", "cafe\u0301", "\u0915\u094d\u0937", "\u0e01\u0e34\u0e48"]:
        a(t)
    # ---- emoji ----
    for t in ["😀", "😀😀", "😀 😃 😄", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵🇫🇷",
              "❤️", "✨", "🤖 robots", "I ❤ NY", "☃", "⚡️⚡", "🫠", "🧑🏿‍🚀", "1️⃣", "#️⃣",
              "\U0001F9D1\u200D\U0001F91D\u200D\U0001F9D1", "\U000E0067", "\U0010FFFF", "\uFFFD",
              "\uFEFFBOM first", "zero\u200bwidth", "\u2028\u2029"]:
        a(t)
    # ---- code ----
    for t in ["int main(void) { return 0; }",
              "def f(x):\n    return x * 2\n",
              "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
              "if __name__ == \"__main__\":\n    main()\n",
              "#include <stdio.h>\n\nint main() {\n    printf(\"hi\\n\");\n}\n",
              "const x = {a: 1, b: [2, 3]};",
              "SELECT * FROM users WHERE id = 42;",
              "<div class=\"x\"><span>hi</span></div>",
              "<table><tr><td>1</td></tr></table>",
              "<h1>Title</h1>\n<p>para</p>",
              "{\"key\": \"value\", \"n\": [1, 2.5, null, true]}",
              "x <- c(1, 2, 3)", "fn main() -> Result<(), Box<dyn Error>> {}",
              "    indented four", "        indented eight", "\t\tindented tabs",
              "line1\nline2\nline3", "a\r\nb\r\nc", "// comment", "/* block */", "# heading",
              "- item\n- item2", "| a | b |\n|---|---|", "```python\nprint(1)\n```",
              "$ echo $HOME && cd ..", "λx.x", "ptr->field", "a != b && c == d || !e",
              "x += 1; y -= 2; z *= 3;", "0xDEADBEEF", "\\n\\t\\\\", "'''docstring'''"]:
        a(t)
    # ---- text spelling special tokens ----
    for t in ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<bos>Hello", "Hello<eos>",
              "<start_of_turn>", "<end_of_turn>", "<start_of_turn>user\n",
              "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
              "<start_of_turn>model\nHi there<end_of_turn>",
              "text <start_of_turn> text", "<start_of_turn><end_of_turn>",
              "<<start_of_turn>>", "<start_of_turn", "start_of_turn>", "<START_OF_TURN>",
              "<unused0>", "<unused99>", "<unused6241>", "<unused6242>", "[multimodal]",
              "<start_of_image>", "<end_of_image>", "<start_of_image><end_of_image>",
              "<b>bold</b>", "<i>it</i> <u>u</u>", "<s>", "</s>", "<s>x</s>", "<sub>2</sub>",
              "<code>x</code>", "<0x41>", "<0xFF>", "<0x0A>", "<|endoftext|>", "<|im_end|>",
              "<bos><bos>", "<eos> <eos>", "<eos>\n<eos>", "a<pad>b", "<mask> word",
              "<table>\n  <tr>\n    <td>x</td>\n  </tr>\n</table>",
              "<|user|>\nHi there<|end|>\n<|assistant|>\n", "<|user|>  x  <|end|>  y",
              "<s> a</s>\n\n<s>\tb", "<|endoftext|>\n", "<unk> <unk>"]:
        a(t)
    # ---- rare / byte-fallback characters ----
    for t in ["\x00", "a\x00b", "\x01\x02\x03", "\x07\x08", "\x1b[31mred\x1b[0m", "\x7f",
              "\u0080", "\u009f", "\ue000", "\uf8ff", "\U000f0000", "\U00100000", "\u4dc0",
              "\U0002a6d6", "\U0001d11e", "\u2fff", "\ufff9", "\ufdd0", "\u1dc0", "\U0001f7e0"]:
        a(t)
    return [t.encode("utf-8") for t in s]


INVALID_UTF8 = [
    b"\xff", b"\xfe\xff", b"\x80", b"\x80\x80\x80", b"\xc3", b"\xc3(", b"a\xc3", b"\xe2\x82",
    b"\xe2\x82 x", b"\xe2 ", b"\xf0\x9f\x98", b"\xf0\x9f\x98 ", b"\xf0 \x9f", b"\xc0\xaf",
    b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"hello\xffworld",
    b"caf\xe9", b"\xe9t\xe9", b"\xbf\xbf\xbf", b"<eos>\xff<bos>", b"\xc3\xa9\xa9",
    b"\xe4\xbd\xa0\xe5\xa5", b"  \xff  ", b"\n\xfe\n",
]


def variations(base):
    """Programmatic variations: spacing around, concatenations, repeats, a
    seeded random mix of characters from several scripts."""
    rng = random.Random(20240611)
    out = []
    words = [b"hello", b"world", "caf\u00e9".encode(), "\u4f60\u597d".encode(),
             "\U0001f600".encode(), b"<eos>", b"<start_of_turn>", b"123", b"foo_bar",
             "\u0645\u0631\u062d\u0628\u0627".encode(), b"  ", b"\n", b"\t", b"</s>", b"<b>"]
    for w in words:
        out += [b" " + w, w + b" ", b"  " + w + b"  ", b"\n" + w + b"\n", w * 3,
                w + b" " + w, b"x" + w + b"y"]
    pool = ("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789 .,;:!?'\"()-_\n\t"
            "\u00e9\u00fc\u00f1\u00df\u4f60\u597d\u4e16\u754c\u3042\u30a2\ud55c"
            "\u0627\u05d0\u03b1\u0436\U0001f600\U0001f44d\u200d\u0301\u2581")
    for i in range(60):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(pool) for _ in range(n)).encode())
    specials = ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>", "</s>", "<b>",
                "   ", "\n\n", "\t\t", "<unk>", "<mask>"]
    for i in range(30):
        parts = []
        for _ in range(rng.randint(2, 6)):
            parts.append(rng.choice(specials) if rng.random() < 0.4 else
                         "".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts).encode())
    for i in range(12):
        n = rng.randint(1, 12)
        out.append(bytes(rng.randint(0, 255) for _ in range(n)))
    # a long text (a few KB) built from the hand-written prose
    prose = [t for t in base if 20 < len(t) < 200]
    out.append(b" ".join(prose[:60]))
    out.append((b"The quick brown fox jumps over the lazy dog. " * 40).strip())
    return out


def bpe_extra():
    """Cases aimed at the byte-level BPE pre-tokenizers: contractions in every
    case, digit runs, case changes inside words, Unicode white space, marks,
    numbers and letters of other scripts, punctuation runs, SmolLM2's special
    tokens."""
    s = ["don't I'LL", "I'm", "I'M", "you're YOU'RE You'Re", "we've WE'VE", "she'd SHE'D",
         "it's IT'S It'S", "can't CAN'T", "'s", "'S", "'", "''s", "x's", " 's", "'ll've'd",
         "rock'n'roll", "O'Neil", "l'\u00e9t\u00e9", "qu'il", "\u2019s curly", "'re'RE", "'ve",
         "'lL", "'\u0130", "word'\u017f", "12345678", "1234567", "123456", "12", "1 2 3",
         "12,345.678", "x1y22z333w4444", "\u0661\u0662\u0663\u0664\u0665", "\u0967\u0968\u0969",
         "\u00bd\u2153", "\u216b2", "\u00b2\u00b3", "3rd", "v1.2.3-rc4", "McDonald's", "iPhone",
         "eBay", "HTMLParser", "getHTTPResponseCode", "\u00c9COLE", "\u00c9cole",
         "\u00c9coleNormale", "\u01c5ungla", "\u01c8", "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3",
         "\ufb01nancial", "\ua78b\ua78cA", "\u1d00\u0299\u1d04", "\u02b0ello", "x\u00b2",
         "\u00c0\u00c9\u00ce\u00f5\u00fc", "stra\u00dfe STRASSE", "\u0130stanbul'da",
         "\u01f2won", "ABCdef", "abcDEF", "aBcDeF", "ABC DEF", "A", "AB'S", "\u00c9'S",
         "\n\n  \t", "  \n", " \n\n", "\r\n\r\n", "a\r\n", "\t\n", "\n \n  \n", "x  \n  y",
         "x \t y", "a \u00a0b", "\u00a0\u00a0", "a\u2003b", "\u3000x", "\u0085", "a\u0085b",
         "\u2028x", "\u1680", "\u200bx", "x\u180e", " \u0301", "a\u0301\u0302b", "\u0301a",
         "\u00e9\u0301t\u00e9", "(a)", "[x]y", "...x", "!?!a", "a!b", "a/b/c",
         "/path/to//file", "http://x.y/z?q=1", "a//\n", "x/\n/y",
         "@user #tag $5 %d &amp; *p", "a_b-c.d", "<<<", ">>> x", "~~~", "$$x$$", "+1 -1", "=>",
         "|x|", "^^", "`code`", "x^2+y^2", "  ...  ", " .", " ,", " !", " ?",
         "Hello , world !", "it ' s", "I 'm here", "you 're", "they 've", " 'll", " 'd",
         "a ' b", "' '", "  '  '  ", "x 's y", "a . b , c ! d ? e", "<|im_start|>",
         "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>system", "text<|endoftext|>more", "<|im_start|><|im_end|>", "<|im_start",
         "im_start|>", "<repo_name>x<file_sep>y", "<jupyter_code>print(1)", "<|IM_START|>",
         " <|im_end|> ", "<|im_end|>\n\n", "\U0001F600x", "x\U0001F600", "\U0001F600 x",
         "a\U0001F44D\U0001F3FDb", "\U000323af\U0002ebf0", "\U0001e030\U00011f00"]
    return [t.encode("utf-8") for t in s]


def bpe_variations():
    """Seeded random mixes of the characters and special tokens that matter to
    the BPE pre-tokenizers."""
    rng = random.Random(20250117)
    pool = ("abcxyzABCXYZ0123456789 '.,;:!?\"()-_/\n\r\t"
            "\u00e9\u00c9\u00df\u4f60\u597d\u3042\u0627\u05d0\u03b1\u03a9\u0436\u0416"
            "\u0661\u00bd\u00a0\u3000\u0301\U0001f600\u2019\u01c5")
    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "  ", "\n\n", "'s", "'LL"]
    out = []
    for i in range(60):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(specials) if rng.random() < 0.25 else
                         "".join(rng.choice(pool) for _ in range(rng.randint(1, 10))))
        out.append("".join(parts).encode())
    return out


def past_unicode(b):
    """True if llama.cpp's UTF-8 decoder makes a code point past U+10FFFF out
    of these bytes (its BPE path then aborts: no golden data for those)."""
    i = 0
    while i < len(b):
        c = b[i]
        n = 1 if c < 0x80 else 0 if c < 0xc0 else 2 if c < 0xe0 else 3 if c < 0xf0 else \
            4 if c < 0xf8 else 0
        if n <= 1 or i + n > len(b) or any((b[i + k] & 0xc0) != 0x80 for k in range(1, n)):
            i += 1
            continue
        cp = c & (0x7f >> n)
        for k in range(1, n):
            cp = cp << 6 | (b[i + k] & 0x3f)
        if cp > 0x10FFFF:
            return True
        i += n
    return False


def bpe_gguf(src, path, pre):
    """SmolLM2's vocabulary and merges with tokenizer.ggml.pre = pre, and only
    the special ids (no add_bos_token / add_space_prefix)."""
    import gguf
    from gguf import GGUFReader
    r = GGUFReader(src)
    f = r.fields
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(f["tokenizer.ggml.tokens"].contents())
    w.add_token_types(f["tokenizer.ggml.token_type"].contents())
    w.add_token_merges(f["tokenizer.ggml.merges"].contents())
    w.add_bos_token_id(f["tokenizer.ggml.bos_token_id"].contents())
    w.add_eos_token_id(f["tokenizer.ggml.eos_token_id"].contents())
    w.add_unk_token_id(f["tokenizer.ggml.unknown_token_id"].contents())
    w.add_pad_token_id(f["tokenizer.ggml.padding_token_id"].contents())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


BPE_PRES = ["gpt-2", "llama-bpe", "dbrx", "qwen2", "tekken", "gpt-4o", "default"]


def synthetic_vocab(gemma_path):
    """A small SentencePiece vocabulary in the Llama 2 style (no add_space_prefix
    or add_bos_token keys: llama.cpp's defaults, both true), built from the
    first ASCII pieces of the Gemma vocabulary with their scores, plus control,
    user-defined, unused and byte tokens."""
    import re
    from gguf import GGUFReader
    r = GGUFReader(gemma_path)
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    scores = r.fields["tokenizer.ggml.scores"].contents()
    vocab = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("<|user|>", 0.0, 4),
             ("<|end|>", 0.0, 3), ("<|endoftext|>", 0.0, 3), ("\n\n", 0.0, 4),
             ("<unused0>", 0.0, 3), ("<|assistant|>", 0.0, 4)]
    vocab += [("<0x%02X>" % b, 0.0, 6) for b in range(256)]
    pat = re.compile(r"^[a-zA-Z\u2581.,!?'0-9]{1,4}$")
    sel = [i for i, t in enumerate(toks) if types[i] == 1 and pat.match(t)]
    seen = set(t for t, _, _ in vocab)
    for i in sel[:3000]:
        vocab.append((toks[i], float(scores[i]), 1))
        seen.add(toks[i])
    for t, sc, ty in [("\u2581", -2.5, 1), ("qq", 0.0, 5), ("\u2581\u4f60", -5.0, 1), ("\u4f60\u597d", -6.0, 1),
                      ("\u2581\u2581", -7.0, 1), ("\u2581\u2581\u2581\u2581", -8.0, 1),
                      ("\u00e9", -9.0, 1), ("caf\u00e9", -10.0, 1), ("zz", -1.5, 0)]:
        if t not in seen:
            vocab.append((t, sc, ty))
            seen.add(t)
    return vocab


def write_gguf(path, vocab, name=None):
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    if name:
        w.add_name(name)
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list([t for t, _, _ in vocab])
    w.add_token_scores([s for _, s, _ in vocab])
    w.add_token_types([ty for _, _, ty in vocab])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def golden_lines(model, cases, compact=False):
    import llama_cpp
    from llama_cpp import Llama

    m = Llama(model_path=model, vocab_only=True, verbose=False)
    vocab = m._model.vocab
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    def detok(ids, special):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        cap = 64
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, cap, False, special)
            if n >= 0:
                return buf.raw[:n]
            cap = -n + 1

    lines = ["# generated by tools/golden/gen_tokenizer.py with llama-cpp-python %s; do not edit"
             % llama_cpp.__version__,
             "model\t%s\t%d" % (os.path.basename(model), n_vocab),
             "eog\t" + "\t".join(str(i) for i in range(n_vocab)
                                 if llama_cpp.llama_vocab_is_eog(vocab, i))]
    for text in cases:
        ids_a = m.tokenize(text, add_bos=True, special=False)
        ids_p = m.tokenize(text, add_bos=False, special=True)
        dets = [detok(ids_a, False), detok(ids_a, True), detok(ids_p, False), detok(ids_p, True)]
        fields = ["T", text.hex(), ",".join(map(str, ids_a)), ",".join(map(str, ids_p))] + \
            ["=" if compact and d == text else d.hex() for d in dets]
        lines.append("\t".join(fields))
    return lines


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "data")
    os.makedirs(out_dir, exist_ok=True)

    base = hand_written()
    cases, seen = [], set()
    for c in base + INVALID_UTF8 + variations(base):
        if c not in seen:
            seen.add(c)
            cases.append(c)

    out_path = os.path.join(out_dir, "tokenizer_golden.txt")
    with open(out_path, "w") as f:
        f.write("\n".join(golden_lines(model, cases)) + "\n")
    print("wrote %s: %d strings, %d bytes" % (out_path, len(cases), os.path.getsize(out_path)))

    # the synthetic Llama-2-style vocabulary: its tokens go into the file (V
    # lines: hex text, score, GGUF token type; bos 1, eos 2, unk 0) and the
    # test rebuilds the GGUF in memory
    import tempfile
    vocab = synthetic_vocab(model)
    small = [c for c in cases if len(c) <= 120]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "synthetic-spm.gguf")
        write_gguf(path, vocab)
        lines = golden_lines(path, small)
    lines[1:1] = ["V\t%s\t%r\t%d" % (t.encode().hex(), s, ty) for t, s, ty in vocab]
    out_path = os.path.join(out_dir, "tokenizer_golden_spm.txt")
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d tokens, %d strings, %d bytes" % (out_path, len(vocab), len(small),
                                                        os.path.getsize(out_path)))

    # the same vocabulary named like Phi-3: llama.cpp then strips the whitespace
    # after special tokens (RSTRIP by model name); strings with markup or spacing
    name = "Phi-3 synthetic"
    markup = [c for c in small if any(x in c for x in (b"<", b"\n", b"\t", b"  "))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "synthetic-phi3.gguf")
        write_gguf(path, vocab, name)
        lines = golden_lines(path, markup)
    lines.insert(1, "name\t%s" % name)
    out_path = os.path.join(out_dir, "tokenizer_golden_phi3.txt")
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d strings, %d bytes" % (out_path, len(markup), os.path.getsize(out_path)))

    # byte-level BPE: SmolLM2's own vocabulary, then other pre-tokenizers on it
    smol = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("SLIM_TEST_MODEL_SMOLLM2") or \
        os.path.join(ROOT, "models", "smollm2-135m-instruct-q4_1.gguf")
    bpe_cases, seen = [], set()
    for c in bpe_extra() + cases + bpe_variations():
        if c not in seen and not past_unicode(c):
            seen.add(c)
            bpe_cases.append(c)
    out_path = os.path.join(out_dir, "tokenizer_golden_smollm2.txt")
    with open(out_path, "w") as f:
        f.write("\n".join(golden_lines(smol, bpe_cases, compact=True)) + "\n")
    print("wrote %s: %d strings, %d bytes" % (out_path, len(bpe_cases),
                                              os.path.getsize(out_path)))
    # the other pre-tokenizers: the BPE cases, then a quarter of the short others
    extra = set(bpe_extra() + bpe_variations())
    short = [c for c in bpe_cases if c in extra or (len(c) <= 32 and hash_pick(c))]
    for pre in BPE_PRES:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "synthetic-bpe-%s.gguf" % pre)
            bpe_gguf(smol, path, pre)
            lines = golden_lines(path, short, compact=True)
        lines.insert(1, "pre\t%s" % pre)
        out_path = os.path.join(out_dir, "tokenizer_golden_bpe_%s.txt" % pre)
        with open(out_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("wrote %s: %d strings, %d bytes" % (out_path, len(short),
                                                  os.path.getsize(out_path)))


def hash_pick(b):
    """A deterministic quarter of the strings."""
    import hashlib
    return hashlib.sha256(b).digest()[0] < 64


if __name__ == "__main__":
    main()
