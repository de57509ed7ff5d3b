/* The JSON parser: valid documents (nesting, key order, unicode, numbers at the
 * edges, a tokenizer-sized object), tests/data/json_sample.json (written by
 * Python's json with every non-ASCII character escaped), the config getters,
 * and a malformed corpus (every truncation, corrupted bytes, bad escapes,
 * invalid UTF-8, deep nesting, duplicates), each failing cleanly with a
 * message that names the document and line:column. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/json.h"
#include "suites.h"

#define SAMPLE "tests/data/json_sample.json"

/* Parse text[0..n) from an exact-size copy (so ASan sees any overread). */
static slim_status parse_n(const char *text, size_t n, slim_json_doc **doc) {
    char *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, n);
    slim_error_clear();
    slim_status s = slim_json_parse(copy, n, "t.json", doc);
    free(copy);
    return s;
}

static slim_json_doc *parse_ok(const char *text) {
    slim_json_doc *doc = NULL;
    slim_status s = parse_n(text, strlen(text), &doc);
    ck_assert_msg(s == SLIM_OK, "<%s>: %s", text, slim_last_error());
    ck_assert_ptr_nonnull(doc);
    return doc;
}

/* Expect a FORMAT error whose message is exactly `want` (or contains it, with '~' first). */
static void parse_bad_n(const char *text, size_t n, const char *want) {
    slim_json_doc *doc = (slim_json_doc *)&doc;
    slim_status s = parse_n(text, n, &doc);
    ck_assert_msg(s == SLIM_ERR_FORMAT, "<%.*s>: status %d, want FORMAT", (int)n, text, s);
    ck_assert_ptr_null(doc);
    const char *msg = slim_last_error();
    ck_assert_msg(strncmp(msg, "t.json:", 7) == 0, "<%.*s>: %s", (int)n, text, msg);
    if (want && want[0] == '~')
        ck_assert_msg(strstr(msg, want + 1) != NULL, "<%.*s>: got <%s>, want ~<%s>", (int)n, text,
                      msg, want + 1);
    else if (want)
        ck_assert_msg(strcmp(msg, want) == 0, "<%.*s>: got <%s>, want <%s>", (int)n, text, msg,
                      want);
}
static void parse_bad(const char *text, const char *want) { parse_bad_n(text, strlen(text), want); }

static bool str_is(const slim_json *v, const char *want, size_t want_len) {
    size_t n;
    const char *s = slim_json_str(v, &n);
    return s && n == want_len && memcmp(s, want, n) == 0 && s[n] == '\0';
}
#define STR_IS(v, lit) str_is((v), (lit), sizeof(lit) - 1)

/* ---- valid documents ---------------------------------------------------------------------- */

START_TEST(test_nested) {
    const char *text = "\xEF\xBB\xBF" /* a BOM is skipped */
                       " {\n"
                       "  \"name\": \"slim\", \"n\": 3, \"pi\": 3.25, \"t\": true, \"f\": false,\n"
                       "  \"nothing\": null,\n"
                       "  \"list\": [1, [2, [3, []]], {}, \"x\"],\n"
                       "  \"obj\": {\"inner\": {\"deep\": [null]}},\n"
                       "  \"\": \"empty key\"\r\n"
                       "}\t\n";
    slim_json_doc *doc = parse_ok(text);
    const slim_json *r = slim_json_root(doc);
    ck_assert_int_eq(slim_json_type_of(r), SLIM_JSON_OBJECT);
    ck_assert_str_eq(slim_json_doc_name(doc), "t.json");
    ck_assert_uint_eq(slim_json_len(r), 9);
    static const char *keys[] = {"name", "n", "pi", "t", "f", "nothing", "list", "obj", ""};
    for (size_t i = 0; i < 9; i++) { /* document order */
        const char *k;
        size_t kl;
        const slim_json *v = slim_json_member(r, i, &k, &kl);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(kl, strlen(keys[i]));
        ck_assert_str_eq(k, keys[i]);
        ck_assert_ptr_eq(slim_json_get(r, keys[i]), v);
        ck_assert_ptr_eq(slim_json_at(r, i), v);
    }
    ck_assert_ptr_null(slim_json_member(r, 9, NULL, NULL));
    ck_assert_ptr_null(slim_json_at(r, 9));
    ck_assert(STR_IS(slim_json_get(r, "name"), "slim"));
    int64_t i;
    double d;
    bool b;
    ck_assert(slim_json_i64(slim_json_get(r, "n"), &i) && i == 3);
    ck_assert(slim_json_num(slim_json_get(r, "pi"), &d) && d == 3.25);
    ck_assert(!slim_json_i64(slim_json_get(r, "pi"), &i));
    ck_assert(slim_json_bool(slim_json_get(r, "t"), &b) && b);
    ck_assert(slim_json_bool(slim_json_get(r, "f"), &b) && !b);
    ck_assert(slim_json_is_null(slim_json_get(r, "nothing")));
    ck_assert_int_eq(slim_json_type_of(slim_json_get(r, "nothing")), SLIM_JSON_NULL);
    ck_assert(!slim_json_is_null(slim_json_get(r, "missing")));
    ck_assert(STR_IS(slim_json_get(r, ""), "empty key"));
    ck_assert(STR_IS(slim_json_getn(r, "namex", 4), "slim"));

    const slim_json *list = slim_json_get(r, "list");
    ck_assert_int_eq(slim_json_type_of(list), SLIM_JSON_ARRAY);
    ck_assert_uint_eq(slim_json_len(list), 4);
    ck_assert(slim_json_i64(slim_json_at(list, 0), &i) && i == 1);
    const slim_json *l1 = slim_json_at(list, 1);
    ck_assert(slim_json_i64(slim_json_at(l1, 0), &i) && i == 2);
    const slim_json *l11 = slim_json_at(l1, 1);
    ck_assert(slim_json_i64(slim_json_at(l11, 0), &i) && i == 3);
    ck_assert_int_eq(slim_json_type_of(slim_json_at(l11, 1)), SLIM_JSON_ARRAY);
    ck_assert_uint_eq(slim_json_len(slim_json_at(l11, 1)), 0);
    ck_assert_int_eq(slim_json_type_of(slim_json_at(list, 2)), SLIM_JSON_OBJECT);
    ck_assert_uint_eq(slim_json_len(slim_json_at(list, 2)), 0);
    ck_assert(STR_IS(slim_json_at(list, 3), "x"));
    ck_assert_ptr_null(slim_json_at(list, 4));
    ck_assert_ptr_null(slim_json_get(list, "x")); /* not an object */
    ck_assert(slim_json_is_null(
        slim_json_at(slim_json_get(slim_json_get(slim_json_get(r, "obj"), "inner"), "deep"), 0)));
    /* Chaining through absent values and wrong types answers NULL / false / 0. */
    ck_assert_ptr_null(slim_json_get(slim_json_get(r, "nope"), "x"));
    ck_assert_ptr_null(slim_json_at(slim_json_get(r, "name"), 0));
    ck_assert_uint_eq(slim_json_len(slim_json_get(r, "name")), 0);
    ck_assert_uint_eq(slim_json_len(NULL), 0);
    ck_assert_ptr_null(slim_json_str(slim_json_get(r, "n"), NULL));
    ck_assert(!slim_json_num(slim_json_get(r, "name"), &d));
    ck_assert(!slim_json_bool(slim_json_get(r, "n"), &b));
    ck_assert(!slim_json_i64(NULL, &i));
    ck_assert_int_eq(slim_json_type_of(NULL), SLIM_JSON_NONE);
    ck_assert_ptr_null(slim_json_get(r, NULL));
    ck_assert_ptr_null(slim_json_root(NULL));
    ck_assert_str_eq(slim_json_type_name(SLIM_JSON_BOOL), "boolean");
    ck_assert_str_eq(slim_json_type_name(SLIM_JSON_NONE), "nothing");
    ck_assert_str_eq(slim_json_type_name((slim_json_type)99), "?");
    slim_json_free(doc);
    slim_json_free(NULL);

    /* Scalars at the top level (RFC 8259), surrounded by whitespace. */
    doc = parse_ok(" \"top\" ");
    ck_assert(STR_IS(slim_json_root(doc), "top"));
    slim_json_free(doc);
    doc = parse_ok("-7");
    ck_assert(slim_json_i64(slim_json_root(doc), &i) && i == -7);
    slim_json_free(doc);
    doc = parse_ok("null");
    ck_assert(slim_json_is_null(slim_json_root(doc)));
    slim_json_free(doc);
    doc = parse_ok("[]");
    ck_assert_uint_eq(slim_json_len(slim_json_root(doc)), 0);
    slim_json_free(doc);
}
END_TEST

START_TEST(test_numbers) {
    static const struct {
        const char *text;
        double d;
        bool is_int;
        int64_t i;
    } cases[] = {
        {"0", 0.0, true, 0},
        {"-0", -0.0, true, 0},
        {"-0.0", -0.0, true, 0},
        {"1", 1.0, true, 1},
        {"1.0", 1.0, true, 1},
        {"1e3", 1000.0, true, 1000},
        {"1E+3", 1000.0, true, 1000},
        {"-1e2", -100.0, true, -100},
        {"1.5e1", 15.0, true, 15},
        {"100e-2", 1.0, true, 1},
        {"0.0e5", 0.0, true, 0},
        {"0e-999999999999", 0.0, true, 0},
        {"123e-2", 1.23, false, 0},
        {"2.5", 2.5, false, 0},
        {"-2.25e-10", -2.25e-10, false, 0},
        {"9007199254740993", 9007199254740992.0, true, INT64_C(9007199254740993)},
        {"9223372036854775807", 9223372036854775807.0, true, INT64_MAX},
        {"-9223372036854775808", -9223372036854775808.0, true, INT64_MIN},
        {"9223372036854775808", 9223372036854775808.0, false, 0},
        {"-9223372036854775809", -9223372036854775809.0, false, 0},
        {"18446744073709551615", 18446744073709551615.0, false, 0},
        {"1e18", 1e18, true, INT64_C(1000000000000000000)},
        {"1e19", 1e19, false, 0},
        {"0.000000000000000000000000000000000000000000000000001e51", 1.0, true, 1},
        {"10000000000000000000000000000000000000000000000000000e-51", 10.0, true, 10},
        {"1.7976931348623157e308", 1.7976931348623157e308, false, 0},
        {"-1.7976931348623157e308", -1.7976931348623157e308, false, 0},
        {"4.9406564584124654e-324", 4.9406564584124654e-324, false, 0},
        {"2.2250738585072014e-308", 2.2250738585072014e-308, false, 0},
        {"1e-400", 0.0, false, 0}, /* underflows to 0 but is not an integer */
        {"0.1", 0.1, false, 0},
        {"123456789012345678901234567890", 123456789012345678901234567890.0, false, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        slim_json_doc *doc = parse_ok(cases[k].text);
        const slim_json *v = slim_json_root(doc);
        double d;
        int64_t i = 12345;
        ck_assert_int_eq(slim_json_type_of(v), SLIM_JSON_NUMBER);
        ck_assert(slim_json_num(v, &d));
        ck_assert_msg(d == cases[k].d && signbit(d) == signbit(cases[k].d), "%s: %.17g",
                      cases[k].text, d);
        ck_assert_msg(slim_json_i64(v, &i) == cases[k].is_int, "%s: is_int", cases[k].text);
        if (cases[k].is_int)
            ck_assert_msg(i == cases[k].i, "%s: %lld", cases[k].text, (long long)i);
        slim_json_free(doc);
    }
    /* A long number token (past the stack buffer) converts the same. */
    char lng[400] = "0.";
    memset(lng + 2, '0', 300);
    strcpy(lng + 302, "15e301");
    slim_json_doc *doc = parse_ok(lng);
    double d;
    ck_assert(slim_json_num(slim_json_root(doc), &d) && d == 1.5);
    slim_json_free(doc);

    parse_bad("1e400", "t.json:1:1: number out of range (beyond the double range)");
    parse_bad("[-1e309]", "t.json:1:2: number out of range (beyond the double range)");
    parse_bad("01", "t.json:1:1: leading zeros are not allowed in a number");
    parse_bad("-01", "t.json:1:2: leading zeros are not allowed in a number");
    parse_bad("-", "t.json:1:2: expected a digit after '-', got end of input");
    parse_bad("-a", "t.json:1:2: expected a digit after '-', got 'a'");
    parse_bad("1.", "t.json:1:3: expected a digit after '.', got end of input");
    parse_bad("1.e5", "t.json:1:3: expected a digit after '.', got 'e'");
    parse_bad("1e", "t.json:1:3: expected a digit in the exponent, got end of input");
    parse_bad("1e+", "t.json:1:4: expected a digit in the exponent, got end of input");
    parse_bad(".5", "t.json:1:1: expected a value, got '.'");
    parse_bad("+1", "t.json:1:1: expected a value, got '+'");
    parse_bad("NaN", "t.json:1:1: expected a value, got 'N'");
    parse_bad("Infinity", "t.json:1:1: expected a value, got 'I'");
    parse_bad("-Infinity", "t.json:1:2: expected a digit after '-', got 'I'");
    parse_bad("0x10", "t.json:1:2: expected end of input after the JSON value, got 'x'");
    parse_bad("1 2", "t.json:1:3: expected end of input after the JSON value, got '2'");
}
END_TEST

START_TEST(test_strings) {
    slim_json_doc *doc = parse_ok(
        "[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\", \"\\u00e9\\u00E9\", \"\\ud83d\\ude00\", "
        "\"a\\u0000b\", \"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\", \"\\u20AC\\uFFFF\\u0080\", \"\","
        " \"\\uDBFF\\uDFFF\", \"\x7f\"]");
    const slim_json *r = slim_json_root(doc);
    ck_assert(STR_IS(slim_json_at(r, 0), "\" \\ / \b \f \n \r \t"));
    ck_assert(STR_IS(slim_json_at(r, 1), "\xc3\xa9\xc3\xa9"));
    ck_assert(STR_IS(slim_json_at(r, 2), "\xf0\x9f\x98\x80"));
    ck_assert(STR_IS(slim_json_at(r, 3), "a\0b")); /* embedded NUL, length 3 */
    ck_assert(STR_IS(slim_json_at(r, 4), "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80"));
    ck_assert(STR_IS(slim_json_at(r, 5), "\xe2\x82\xac\xef\xbf\xbf\xc2\x80"));
    ck_assert(STR_IS(slim_json_at(r, 6), ""));
    ck_assert(STR_IS(slim_json_at(r, 7), "\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    ck_assert(STR_IS(slim_json_at(r, 8), "\x7f"));             /* DEL needs no escape */
    slim_json_free(doc);
    /* Keys are decoded too, and looked up decoded. */
    doc = parse_ok("{\"\\u00fcn\\u00efcode\": 1, \"a\\u0000b\": 2}");
    int64_t i;
    ck_assert(slim_json_i64(slim_json_get(slim_json_root(doc), "\xc3\xbcn\xc3\xaf"
                                                               "code"),
                            &i) &&
              i == 1);
    ck_assert(slim_json_i64(slim_json_getn(slim_json_root(doc), "a\0b", 3), &i) && i == 2);
    ck_assert_ptr_null(slim_json_get(slim_json_root(doc), "a"));
    slim_json_free(doc);

    parse_bad("\"abc", "t.json:1:1: unterminated string (no closing '\"' before the end of input)");
    parse_bad("[\"a\\\"]", "~unterminated string");
    parse_bad("\"a\\", "t.json:1:4: expected an escape character after '\\', got end of input");
    parse_bad("\"\\x\"", "t.json:1:2: invalid escape '\\' followed by 'x' in a string");
    parse_bad("\"\\'\"", "t.json:1:2: invalid escape '\\' followed by ''' in a string");
    parse_bad("\"\\U0041\"", "~invalid escape");
    parse_bad("\"\\u12G4\"", "t.json:1:6: expected 4 hex digits after \\u, got 'G'");
    parse_bad("\"\\u12", "t.json:1:6: expected 4 hex digits after \\u, got end of input");
    parse_bad("\"\\ud83d\"",
              "t.json:1:2: lone high surrogate \\uD83D in a string (expected a low surrogate "
              "\\uDC00-\\uDFFF escape after it)");
    parse_bad("\"\\ud83dx\"", "~lone high surrogate");
    parse_bad("\"\\ud83d\\u0041\"", "~lone high surrogate \\uD83D");
    parse_bad("\"\\ud83d\\ud83d\"", "~lone high surrogate");
    parse_bad("\"\\ud83d\\n\"", "~lone high surrogate");
    parse_bad("\"\\ud83d\\u12\"", "~expected 4 hex digits");
    parse_bad("\"x\\ude00\"", "t.json:1:3: lone low surrogate \\uDE00 in a string");
    parse_bad("\"a\nb\"", "t.json:1:3: control character 0x0a in a string (it must be escaped)");
    parse_bad("\"a\tb\"", "~control character 0x09");
    parse_bad_n("\"a\0b\"", 5,
                "t.json:1:3: control character 0x00 in a string (it must be escaped)");

    static const char *bad_utf8[] = {"\xff",
                                     "\xc0\x80",
                                     "\xc1\xbf",
                                     "\x80",
                                     "\xed\xa0\x80",
                                     "\xed\xbf\xbf",
                                     "\xe0\x80\xaf",
                                     "\xf0\x80\x80\xaf",
                                     "\xf4\x90\x80\x80",
                                     "\xf8\x88\x80\x80",
                                     "\xe2\x82",
                                     "\xc3",
                                     "\xfe"};
    for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++) {
        char text[32];
        snprintf(text, sizeof text, "\"ok%s\"", bad_utf8[k]);
        char want[96];
        snprintf(want, sizeof want, "t.json:1:4: invalid UTF-8 (byte 0x%02x) in a string",
                 (uint8_t)bad_utf8[k][0]);
        parse_bad(text, want);
        snprintf(text, sizeof text, "{\"k%s\": 1}", bad_utf8[k]); /* in a key */
        parse_bad(text, "~invalid UTF-8");
        snprintf(text, sizeof text, "[1, %s]", bad_utf8[k]); /* outside a string */
        parse_bad(text, "~expected a value, got byte 0x");
    }
    /* Errors name the character; columns count characters, not bytes. */
    parse_bad("[\"\xc3\xa9\xc3\xa9\", \xc3\xa9]", "t.json:1:8: expected a value, got '\xc3\xa9'");
}
END_TEST

START_TEST(test_syntax_errors) {
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "t.json:1:1: expected a value, got end of input"},
        {" \n\t ", "t.json:2:3: expected a value, got end of input"},
        {"\xEF\xBB\xBF", "t.json:1:2: expected a value, got end of input"},
        {"{", "t.json:1:2: expected a string key or '}', got end of input"},
        {"[", "t.json:1:2: expected a value, got end of input"},
        {"[1,]", "t.json:1:4: expected a value, got ']'"},
        {"[1 2]", "t.json:1:4: expected ',' or ']' after an array element, got '2'"},
        {"[1,,2]", "t.json:1:4: expected a value, got ','"},
        {"{\"a\":1,}", "t.json:1:8: expected a string key after ',', got '}'"},
        {"{\"a\" 1}", "t.json:1:6: expected ':' after an object key, got '1'"},
        {"{\"a\":1 \"b\":2}", "t.json:1:8: expected ',' or '}' after an object member, got '\"'"},
        {"{\"a\":}", "t.json:1:6: expected a value, got '}'"},
        {"{a:1}", "t.json:1:2: expected a string key or '}', got 'a'"},
        {"{'a':1}", "t.json:1:2: expected a string key or '}', got '''"},
        {"{1:1}", "t.json:1:2: expected a string key or '}', got '1'"},
        {"[1]]", "t.json:1:4: expected end of input after the JSON value, got ']'"},
        {"{}{}", "t.json:1:3: expected end of input after the JSON value, got '{'"},
        {"[1] // c", "t.json:1:5: expected end of input after the JSON value, got '/'"},
        {"/* c */ 1", "t.json:1:1: expected a value, got '/'"},
        {"[tru]", "t.json:1:5: expected 'e' (in 'true'), got ']'"},
        {"nul", "t.json:1:4: expected 'l' (in 'null'), got end of input"},
        {"True", "t.json:1:1: expected a value, got 'T'"},
        {"fals e", "t.json:1:5: expected 'e' (in 'false'), got byte 0x20"},
        {"[\n  1,\n  2\n  3]", "t.json:4:3: expected ',' or ']' after an array element, got '3'"},
        {"{\"a\": [1, {\"b\": x}]}", "t.json:1:17: expected a value, got 'x'"},
        {"[1]\x0b", "t.json:1:4: expected end of input after the JSON value, got byte 0x0b"},
        {"\xc2\xa0[1]",
         "t.json:1:1: expected a value, got '\xc2\xa0'"}, /* NBSP is not whitespace */
        {"{\"a\":1,\"a\":2}", "t.json:1:8: duplicate key \"a\" (also member #0 of this object)"},
        {"{\"x\":{\"k\":1,\"j\":2,\"k\":3}}",
         "t.json:1:19: duplicate key \"k\" (also member #0 of this object)"},
        {"{\"\\u0061\":1,\"a\":2}", "~duplicate key \"a\""}, /* equal once decoded */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        parse_bad(cases[k].text, cases[k].want);
    /* Same keys in different objects are fine. */
    slim_json_doc *doc = parse_ok("[{\"a\":1},{\"a\":2},{\"b\":{\"a\":3}}]");
    slim_json_free(doc);
    /* A NUL byte outside a string. */
    parse_bad_n("[1,\0 2]", 7, "t.json:1:4: expected a value, got byte 0x00");
    parse_bad_n("[1]\0", 4,
                "t.json:1:4: expected end of input after the JSON value, got byte 0x00");
    /* The name defaults to "json". */
    slim_json_doc *d = (slim_json_doc *)&d;
    ck_assert_int_eq(slim_json_parse("[", 1, NULL, &d), SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(), "json:1:2: expected a value, got end of input");
    ck_assert_ptr_null(d);
    /* Arguments. */
    ck_assert_int_eq(slim_json_parse("1", 1, "x", NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_json_parse(NULL, 1, "x", &d), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_json_parse(NULL, 0, "x", &d), SLIM_ERR_FORMAT);
    ck_assert_int_eq(slim_json_parse("1", SLIM_JSON_MAX_TEXT + 1, "x", &d), SLIM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "size limit"));
    ck_assert_int_eq(slim_json_parse_file("tests/data/no-such.json", &d), SLIM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "tests/data/no-such.json"));
    ck_assert_int_eq(slim_json_parse_file(NULL, &d), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_json_parse_file(SAMPLE, NULL), SLIM_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_depth) {
    enum { N = SLIM_JSON_MAX_DEPTH + 1 };
    static char text[2 * N + 16];
    for (int depth = SLIM_JSON_MAX_DEPTH; depth <= N; depth++) {
        for (int obj = 0; obj < 2; obj++) {
            size_t n = 0;
            for (int k = 0; k < depth; k++) {
                if (obj && k == depth - 1) {
                    memcpy(text + n, "{\"k\":", 5);
                    n += 5;
                } else {
                    text[n++] = '[';
                }
            }
            text[n++] = '1';
            for (int k = depth - 1; k >= 0; k--)
                text[n++] = obj && k == depth - 1 ? '}' : ']';
            slim_json_doc *doc = NULL;
            slim_status s = parse_n(text, n, &doc);
            if (depth <= SLIM_JSON_MAX_DEPTH) {
                ck_assert_msg(s == SLIM_OK, "depth %d: %s", depth, slim_last_error());
                const slim_json *v = slim_json_root(doc);
                for (int k = 0; k < depth - 1; k++)
                    v = slim_json_at(v, 0);
                int64_t i;
                ck_assert(slim_json_i64(obj ? slim_json_get(v, "k") : slim_json_at(v, 0), &i) &&
                          i == 1);
                slim_json_free(doc);
            } else {
                ck_assert_int_eq(s, SLIM_ERR_FORMAT);
                ck_assert_str_eq(slim_last_error(),
                                 "t.json:1:513: nesting deeper than 512 arrays/objects");
            }
        }
    }
    /* Far deeper input fails at the limit, without recursing further. */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    memset(deep, '[', big);
    parse_bad_n(deep, big, "t.json:1:513: nesting deeper than 512 arrays/objects");
    free(deep);
}
END_TEST

/* ---- a tokenizer-sized document --------------------------------------------------------- */

START_TEST(test_big_object) {
    enum { N = 150000, M = 50000 };
    size_t cap = (size_t)N * 40 + (size_t)M * 40 + 64, n = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    n += (size_t)snprintf(text + n, cap - n, "{\"vocab\": {");
    for (int i = 0; i < N; i++) /* keys with non-ASCII and escapes, like byte-level BPE vocabs */
        n += (size_t)snprintf(text + n, cap - n, "%s\"\\u0120t\xc3\xa9k%d\": %d", i ? ", " : "", i,
                              i);
    n += (size_t)snprintf(text + n, cap - n, "}, \"merges\": [");
    for (int i = 0; i < M; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s[\"a%d\", \"b%d\"]", i ? "," : "", i, i);
    n += (size_t)snprintf(text + n, cap - n, "]}");
    ck_assert_uint_lt(n, cap);

    clock_t t0 = clock();
    slim_json_doc *doc = NULL;
    ck_assert_msg(slim_json_parse(text, n, "tokenizer.json", &doc) == SLIM_OK, "%s",
                  slim_last_error());
    const slim_json *vocab = slim_json_get(slim_json_root(doc), "vocab");
    ck_assert_uint_eq(slim_json_len(vocab), N);
    clock_t t1 = clock();
    char key[64];
    int bad = -1; /* no ck_assert in the loop: each one costs a write to Check's pipe */
    for (int i = 0; i < N && bad < 0; i++) {
        snprintf(key, sizeof key, "\xc4\xa0t\xc3\xa9k%d", i);
        int64_t v;
        const char *k;
        if (!slim_json_i64(slim_json_get(vocab, key), &v) || v != i) bad = i;
        if (!slim_json_member(vocab, (size_t)i, &k, NULL) || strcmp(k, key) != 0) bad = i;
    }
    ck_assert_msg(bad < 0, "key %d", bad);
    ck_assert_ptr_null(slim_json_get(vocab, "\xc4\xa0t\xc3\xa9k150000"));
    ck_assert_ptr_null(slim_json_get(vocab, "missing"));
    clock_t t2 = clock();
    const slim_json *merges = slim_json_get(slim_json_root(doc), "merges");
    ck_assert_uint_eq(slim_json_len(merges), M);
    ck_assert(STR_IS(slim_json_at(slim_json_at(merges, M - 1), 1), "b49999"));
    fprintf(stderr, "json: %zu-byte document parsed in %.0f ms, %d lookups in %.0f ms\n", n,
            1e3 * (double)(t1 - t0) / CLOCKS_PER_SEC, N, 1e3 * (double)(t2 - t1) / CLOCKS_PER_SEC);
    /* Hashed lookups: far below the ~1e10 comparisons a linear scan would need. */
    ck_assert_msg((double)(t2 - t1) / CLOCKS_PER_SEC < 5.0, "lookups too slow");
    slim_json_free(doc);

    /* A duplicate among many keys is found (through the index) and located. */
    char *dup = malloc(cap);
    n = 0;
    n += (size_t)snprintf(dup + n, cap - n, "{");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(dup + n, cap - n, "\"k%d\":%d,\n", i, i);
    n += (size_t)snprintf(dup + n, cap - n, "\"k777\":0}");
    parse_bad_n(dup, n, "t.json:1001:1: duplicate key \"k777\" (also member #777 of this object)");
    free(dup);
    free(text);
}
END_TEST

/* ---- Python's json output ------------------------------------------------------------------ */

START_TEST(test_sample_file) {
    slim_json_doc *doc = NULL;
    ck_assert_msg(slim_json_parse_file(SAMPLE, &doc) == SLIM_OK, "%s", slim_last_error());
    ck_assert_str_eq(slim_json_doc_name(doc), SAMPLE);
    const slim_json *r = slim_json_root(doc);
    ck_assert_uint_eq(slim_json_len(r), 8);
    ck_assert(STR_IS(slim_json_get(r, "ascii"), "plain"));
    ck_assert(STR_IS(slim_json_get(r, "latin"), "\xc3\xbcn\xc3\xaf"
                                                "c\xc3\xb6"
                                                "de"));
    ck_assert(STR_IS(slim_json_get(r, "cjk"), "\xe4\xb8\xad\xe6\x96\x87"));
    ck_assert(STR_IS(slim_json_get(r, "emoji"), "\xf0\x9f\x98\x80 grin"));
    ck_assert(STR_IS(slim_json_get(r, "controls"), "tab\there\nnewline \"q\" back\\slash \x01"));
    ck_assert(STR_IS(slim_json_get(r, "nul"), "a\0b"));
    const slim_json *num = slim_json_get(r, "numbers");
    ck_assert_uint_eq(slim_json_len(num), 9);
    double d;
    int64_t i;
    ck_assert(slim_json_i64(slim_json_at(num, 0), &i) && i == 0);
    ck_assert(slim_json_num(slim_json_at(num, 1), &d) && d == 0.0 && signbit(d));
    ck_assert(slim_json_num(slim_json_at(num, 2), &d) && d == 1.5);
    ck_assert(slim_json_num(slim_json_at(num, 3), &d) && d == -2.25e-10);
    ck_assert(slim_json_num(slim_json_at(num, 4), &d) && d == 1e300);
    ck_assert(slim_json_i64(slim_json_at(num, 5), &i) && i == INT64_C(9007199254740993));
    ck_assert(slim_json_i64(slim_json_at(num, 6), &i) && i == INT64_MIN);
    ck_assert(!slim_json_i64(slim_json_at(num, 7), &i));
    ck_assert(slim_json_num(slim_json_at(num, 7), &d) && d == 18446744073709551615.0);
    ck_assert(slim_json_i64(slim_json_at(num, 8), &i) && i == 3); /* 3.0 */
    const slim_json *nested = slim_json_get(r, "nested");
    const slim_json *a = slim_json_get(nested, "a");
    ck_assert(slim_json_is_null(
        slim_json_get(slim_json_at(slim_json_at(slim_json_at(a, 1), 1), 1), "b")));
    bool b;
    ck_assert(slim_json_bool(slim_json_get(nested, "t"), &b) && b);
    ck_assert(slim_json_bool(slim_json_get(nested, "f"), &b) && !b);
    slim_json_free(doc);
}
END_TEST

/* ---- config getters ----------------------------------------------------------------------- */

START_TEST(test_config_getters) {
    const char *text = "{\n"
                       "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                       "  \"hidden_size\": 576,\n"
                       "  \"num_hidden_layers\": 30,\n"
                       "  \"rms_norm_eps\": 1e-05,\n"
                       "  \"rope_theta\": 10000.0,\n"
                       "  \"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"llama3\",\n"
                       "                   \"bad\": \"x\", \"low_freq_factor\": 1},\n"
                       "  \"sliding_window\": null,\n"
                       "  \"tie_word_embeddings\": true,\n"
                       "  \"eos_token_id\": [2, 3],\n"
                       "  \"torch_dtype\": \"bfloat16\",\n"
                       "  \"head_dim\": 64.5,\n"
                       "  \"vocab_size\": \"49152\",\n"
                       "  \"huge\": 1e39\n"
                       "}\n";
    slim_json_doc *doc = NULL;
    ck_assert_int_eq(slim_json_parse(text, strlen(text), "config.json", &doc), SLIM_OK);
    const slim_json *r = slim_json_root(doc);
    int64_t i;
    double d;
    float f;
    bool b;
    const char *s;
    size_t n;
    const slim_json *v;
    const int64_t def_i = 7;
    const double def_d = 0.5;
    const float def_f = 0.25f;
    const bool def_b = false;

    ck_assert_int_eq(slim_json_cfg_i64(doc, r, "hidden_size", NULL, 1, 1 << 20, &i), SLIM_OK);
    ck_assert_int_eq(i, 576);
    ck_assert_int_eq(slim_json_cfg_i64(doc, r, "rope_scaling.low_freq_factor", NULL, 0, 10, &i),
                     SLIM_OK);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(slim_json_cfg_i64(doc, r, "rope_scaling.factor", NULL, 0, 10, &i), SLIM_OK);
    ck_assert_int_eq(i, 8); /* 8.0 is an exact integer */
    ck_assert_int_eq(slim_json_cfg_i64(doc, r, "num_key_value_heads", &def_i, 1, 100, &i), SLIM_OK);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(slim_json_cfg_i64(doc, r, "sliding_window", &def_i, 1, 100, &i), SLIM_OK);
    ck_assert_int_eq(i, 7); /* null takes the default */
    ck_assert_int_eq(slim_json_cfg_f64(doc, r, "rms_norm_eps", NULL, &d), SLIM_OK);
    ck_assert(d == 1e-05);
    ck_assert_int_eq(slim_json_cfg_f64(doc, r, "hidden_size", NULL, &d), SLIM_OK);
    ck_assert(d == 576.0);
    ck_assert_int_eq(slim_json_cfg_f64(doc, r, "partial_rotary_factor", &def_d, &d), SLIM_OK);
    ck_assert(d == 0.5);
    ck_assert_int_eq(slim_json_cfg_f32(doc, r, "rope_theta", NULL, &f), SLIM_OK);
    ck_assert(f == 10000.0f);
    ck_assert_int_eq(slim_json_cfg_f32(doc, r, "rope_scaling.missing", &def_f, &f), SLIM_OK);
    ck_assert(f == 0.25f);
    ck_assert_int_eq(slim_json_cfg_f32(doc, r, "missing.deeper.still", &def_f, &f), SLIM_OK);
    ck_assert_int_eq(slim_json_cfg_f32(doc, r, "sliding_window.x", &def_f, &f), SLIM_OK);
    ck_assert_int_eq(slim_json_cfg_bool(doc, r, "tie_word_embeddings", NULL, &b), SLIM_OK);
    ck_assert(b);
    ck_assert_int_eq(slim_json_cfg_bool(doc, r, "use_cache", &def_b, &b), SLIM_OK);
    ck_assert(!b);
    ck_assert_int_eq(slim_json_cfg_str(doc, r, "rope_scaling.rope_type", NULL, &s, &n), SLIM_OK);
    ck_assert(n == 6 && strcmp(s, "llama3") == 0);
    ck_assert_int_eq(slim_json_cfg_str(doc, r, "model_type", "llama", &s, &n), SLIM_OK);
    ck_assert(n == 5 && strcmp(s, "llama") == 0);
    ck_assert_int_eq(slim_json_cfg_value(doc, r, "eos_token_id", SLIM_JSON_NONE, true, &v),
                     SLIM_OK);
    ck_assert_uint_eq(slim_json_len(v), 2);
    ck_assert_int_eq(slim_json_cfg_value(doc, r, "architectures", SLIM_JSON_ARRAY, true, &v),
                     SLIM_OK);
    ck_assert(STR_IS(slim_json_at(v, 0), "LlamaForCausalLM"));
    ck_assert_int_eq(
        slim_json_cfg_value(doc, r, "quantization_config", SLIM_JSON_OBJECT, false, &v), SLIM_OK);
    ck_assert_ptr_null(v);

    static const struct {
        int kind; /* 0 i64, 1 f64, 2 f32, 3 bool, 4 str, 5 object value */
        const char *path, *want;
    } errs[] = {
        {0, "num_attention_heads", "config.json: num_attention_heads: missing required key"},
        {0, "sliding_window", "config.json: sliding_window: missing required key"},
        {0, "rope_scaling.nope", "config.json: rope_scaling.nope: missing required key"},
        {0, "torch_dtype", "config.json: torch_dtype: expected an integer, got string"},
        {0, "head_dim", "config.json: head_dim: expected an integer, got 64.5"},
        {0, "vocab_size", "config.json: vocab_size: expected an integer, got string"},
        {0, "num_hidden_layers", "config.json: num_hidden_layers: 30 is out of range [1, 16]"},
        {1, "rope_scaling.rope_type",
         "config.json: rope_scaling.rope_type: expected a number, got string"},
        {1, "rope_scaling.bad", "config.json: rope_scaling.bad: expected a number, got string"},
        {1, "architectures.x",
         "config.json: architectures: expected an object, got array (at architectures.x)"},
        {1, "rope_scaling.factor.x",
         "config.json: rope_scaling.factor: expected an object, got number (at "
         "rope_scaling.factor.x)"},
        {2, "huge", "config.json: huge: 1e+39 is out of the float range"},
        {2, "eos_token_id", "config.json: eos_token_id: expected a number, got array"},
        {3, "torch_dtype", "config.json: torch_dtype: expected a boolean, got string"},
        {3, "missing_flag", "config.json: missing_flag: missing required key"},
        {4, "hidden_size", "config.json: hidden_size: expected a string, got number"},
        {4, "rope_scaling", "config.json: rope_scaling: expected a string, got object"},
        {5, "eos_token_id", "config.json: eos_token_id: expected an object, got array"},
        {5, "quantization_config", "config.json: quantization_config: missing required key"},
    };
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        slim_status st;
        switch (errs[k].kind) {
        case 0: st = slim_json_cfg_i64(doc, r, errs[k].path, NULL, 1, 16, &i); break;
        case 1: st = slim_json_cfg_f64(doc, r, errs[k].path, &def_d, &d); break;
        case 2: st = slim_json_cfg_f32(doc, r, errs[k].path, &def_f, &f); break;
        case 3: st = slim_json_cfg_bool(doc, r, errs[k].path, NULL, &b); break;
        case 4: st = slim_json_cfg_str(doc, r, errs[k].path, "d", &s, NULL); break;
        default: st = slim_json_cfg_value(doc, r, errs[k].path, SLIM_JSON_OBJECT, true, &v); break;
        }
        ck_assert_msg(st == SLIM_ERR_FORMAT, "%s: status %d", errs[k].path, st);
        ck_assert_str_eq(slim_last_error(), errs[k].want);
    }
    /* A non-object start, a NULL doc (name "json"), a NULL path. */
    ck_assert_int_eq(slim_json_cfg_i64(NULL, slim_json_get(r, "eos_token_id"), "x", NULL, 0, 1, &i),
                     SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(), "json: expected an object, got array (at x)");
    ck_assert_int_eq(slim_json_cfg_i64(doc, r, NULL, NULL, 0, 1, &i), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_json_cfg_i64(doc, NULL, "x", &def_i, 0, 10, &i), SLIM_OK);
    ck_assert_int_eq(i, 7);
    slim_json_free(doc);
}
END_TEST

/* ---- the malformed corpus ----------------------------------------------------------------- */

static int n_cases;

/* Parse buf[0..n): OK, or FORMAT with a message naming the document.  Returns the status. */
static slim_status try_parse(const char *buf, size_t n) {
    slim_json_doc *doc = (slim_json_doc *)&doc;
    slim_status s = parse_n(buf, n, &doc);
    if (s == SLIM_OK) {
        /* Walk the result so a bad DOM would show under ASan. */
        const slim_json *r = slim_json_root(doc);
        for (size_t i = 0; i < slim_json_len(r); i++) {
            const char *k = NULL;
            slim_json_member(r, i, &k, NULL);
            const slim_json *v = slim_json_at(r, i);
            ck_assert_ptr_nonnull(v);
            if (k) ck_assert_ptr_eq(slim_json_get(r, k), v);
        }
        slim_json_free(doc);
    } else {
        ck_assert_msg(s == SLIM_ERR_FORMAT, "status %d: %s", s, slim_last_error());
        ck_assert_ptr_null(doc);
        ck_assert_msg(strncmp(slim_last_error(), "t.json:", 7) == 0, "%s", slim_last_error());
        n_cases++;
    }
    return s;
}

static void corpus_on(const char *text, size_t size) {
    /* Every truncation of an object document fails (no proper prefix is a document). */
    size_t end = size; /* the document without trailing whitespace */
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n'))
        end--;
    for (size_t n = 0; n < end; n++) {
        slim_status s = try_parse(text, n);
        ck_assert_msg(s == SLIM_ERR_FORMAT, "truncated to %zu bytes: parsed", n);
    }
    /* Every byte replaced by a few others: never a crash; a status and a message. */
    static const char subs[] = {'\0', '"', '\\', '{', '}',    '[',    ']',    ',',  ':',
                                '0',  'e', '-',  ' ', '\x80', '\xff', '\xc3', '\n', 'u'};
    char *m = malloc(size);
    for (size_t at = 0; at < size; at++)
        for (size_t k = 0; k < sizeof subs; k++) {
            if (text[at] == subs[k]) continue;
            memcpy(m, text, size);
            m[at] = subs[k];
            try_parse(m, size);
        }
    free(m);
}

START_TEST(test_malformed_corpus) {
    n_cases = 0;
    const char *doc = "{\"a\": [1, -2.5e+3, true, false, null, \"s\\u00e9\\n\\ud83d\\ude00\"],"
                      " \"b\": {\"c\": {}, \"d\": []}, \"\xc3\xa9\": \"\xe2\x9c\x93\"}";
    ck_assert_int_eq(try_parse(doc, strlen(doc)), SLIM_OK);
    corpus_on(doc, strlen(doc));
    /* The sample file, too (its own name is t.json here). */
    FILE *f = fopen(SAMPLE, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = malloc(4096);
    size_t n = fread(buf, 1, 4096, f);
    fclose(f);
    ck_assert_uint_gt(n, 100);
    ck_assert_uint_lt(n, 4096);
    ck_assert_int_eq(try_parse(buf, n), SLIM_OK);
    corpus_on(buf, n);
    free(buf);
    fprintf(stderr, "json: %d malformed cases rejected\n", n_cases);
    ck_assert_int_ge(n_cases, 5000);
}
END_TEST

Suite *suite_json(void) {
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parser");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_big_object);
    tcase_add_test(tc, test_sample_file);
    tcase_add_test(tc, test_config_getters);
    tcase_add_test(tc, test_malformed_corpus);
    suite_add_tcase(s, tc);
    return s;
}
