/*
 * test_json.c - the strict JSON reader modules get: what it accepts,
 * what it refuses (where jsmn alone would not), and the accessors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "json.h"

static void
test_accepts(void **state)
{
	static const char *good[] = {
		"{}", "[]", "0", "-1.5e+10", "\"x\"", "true", "null",
		" {\"a\" : [1, 2, {\"b\": null}], \"c\": \"\\u00e9\\n\"} ",
		"[\"\\ud83d\\ude00\"]", "{\"a\":{\"b\":{\"c\":[[]]}}}",
		"\"caf\xc3\xa9\"",
	};
	struct sales_json *j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		j = core_json_parse(good[i], strlen(good[i]));
		if (j == NULL)
			fail_msg("refused: %s", good[i]);
		core_json_free(j);
	}
}

static void
test_refuses(void **state)
{
	static const char *bad[] = {
		"", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}",
		"{\"a\":1 \"b\":2}", "[1 2]", "{1:2}", "{\"a\"}", "01", "1.",
		".5", "-", "1e", "+1", "NaN", "Infinity", "tru", "nul",
		"\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"",
		"\"a\tb\"", "{} {}", "[] x", "\"\xff\"", "\"\xc0\xaf\"",
		"{\"a\":1}}", "[[]", "'x'",
	};
	struct sales_json *j;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = core_json_parse(bad[i], strlen(bad[i]));
		if (j != NULL) {
			core_json_free(j);
			fail_msg("accepted: %s", bad[i]);
		}
	}
	/* An embedded NUL ends nothing: the whole input must be one value. */
	assert_null(core_json_parse("{}\0{}", 5));
}

static void
test_depth_limit(void **state)
{
	char deep[2 * (CORE_JSON_MAX_DEPTH + 2) + 1];
	struct sales_json *j;
	int n = CORE_JSON_MAX_DEPTH + 2, i;

	(void)state;
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[2 * n - 1 - i] = ']';
	}
	deep[2 * n] = '\0';
	assert_null(core_json_parse(deep, strlen(deep)));
	j = core_json_parse(deep + 4, strlen(deep) - 8);
	assert_non_null(j);
	core_json_free(j);
}

/*
 * Deep nesting is refused before jsmn runs.  jsmn alone spends
 * O(depth^2) on "[[[...]]]" (its parent links are walked on every
 * closing bracket): on the old code the first input below took
 * minutes, so a regression shows as a ctest timeout, not as a flaky
 * timing assertion here.  The other shapes each took time or memory
 * somewhere: unclosed brackets, objects, nesting hidden in strings.
 */
#define BIG	(1024 * 1024)

/* open n times, then leaf, then close n times; returns the length. */
static size_t
nest(char *text, size_t n, const char *open, const char *leaf,
    const char *close)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++, len += strlen(open))
		memcpy(text + len, open, strlen(open));
	memcpy(text + len, leaf, strlen(leaf));
	len += strlen(leaf);
	for (i = 0; i < n; i++, len += strlen(close))
		memcpy(text + len, close, strlen(close));
	return len;
}

static void
test_deep_nesting(void **state)
{
	char *text;
	struct sales_json *j;
	size_t i, len;

	(void)state;
	if ((text = malloc(BIG + 16)) == NULL)
		fail();
	/* 1 MiB of "[[[...]]]": 512 Ki levels. */
	len = nest(text, BIG / 2, "[", "", "]");
	assert_null(core_json_parse(text, len));
	/* The same, never closed. */
	assert_null(core_json_parse(text, BIG / 2));
	/* {"a":{"a":...1...}}, 1 MiB. */
	len = nest(text, BIG / 6, "{\"a\":", "1", "}");
	assert_null(core_json_parse(text, len));
	/* Arrays and objects mixed, unclosed: [{"a":[{"a":... */
	len = nest(text, BIG / 6, "[{\"a\":", "", "");
	assert_null(core_json_parse(text, len));
	/* Exactly the limit is fine, one more is not. */
	len = nest(text, CORE_JSON_MAX_DEPTH + 1, "[", "1", "]");
	assert_null(core_json_parse(text, len));
	j = core_json_parse(text + 1, len - 2);
	assert_non_null(j);
	core_json_free(j);
	len = nest(text, CORE_JSON_MAX_DEPTH, "{\"a\":", "{}", "}");
	assert_null(core_json_parse(text, len));
	len = nest(text, CORE_JSON_MAX_DEPTH, "{\"a\":", "1", "}");
	j = core_json_parse(text, len);
	assert_non_null(j);
	core_json_free(j);
	/*
	 * "1:2:3:..." makes jsmn chain each primitive to the one before,
	 * so every closing bracket walks the whole chain: bounded by the
	 * depth, this is 64 walks, not one per bracket.
	 */
	len = nest(text, CORE_JSON_MAX_DEPTH, "[", "", "");
	for (i = 0; len + 2 + CORE_JSON_MAX_DEPTH < BIG; i++) {
		text[len++] = '1';
		text[len++] = ':';
	}
	text[len++] = '1';
	for (i = 0; i < CORE_JSON_MAX_DEPTH; i++)
		text[len++] = ']';
	assert_null(core_json_parse(text, len));
	/*
	 * Brackets inside strings do not nest, escaped quotes do not end
	 * the string: ["\"[[[...", "[[[..."] is a flat array, 1 MiB.
	 */
	len = 0;
	text[len++] = '[';
	text[len++] = '"';
	text[len++] = '\\';
	text[len++] = '"';
	for (i = 0; i < BIG / 4; i++)
		text[len++] = '[';
	memcpy(text + len, "\",\"", 3);
	len += 3;
	for (i = 0; i < BIG / 4; i++)
		text[len++] = '{';
	memcpy(text + len, "\"]", 2);
	len += 2;
	j = core_json_parse(text, len);
	assert_non_null(j);
	assert_int_equal(core_json_len(j, 0), 2);
	core_json_free(j);
	/* Many shallow siblings are fine: [[[1]],[[1]],...], 1 MiB. */
	len = 0;
	text[len++] = '[';
	for (i = 0; len + 8 < BIG; i++) {
		memcpy(text + len, i ? ",[[1]]" : "[[1]]", i ? 6 : 5);
		len += i ? 6 : 5;
	}
	text[len++] = ']';
	j = core_json_parse(text, len);
	assert_non_null(j);
	assert_int_equal(core_json_len(j, 0), (int)i);
	core_json_free(j);
	free(text);
}

/*
 * A reused buffer (len reset to 0) holds the empty string after an
 * empty string token, not the old text: found by tests/fuzz/fuzz_json.
 */
static void
test_string_reuse(void **state)
{
	const char *text = "[\"old text\",\"\"]";
	struct sales_json *j = core_json_parse(text, strlen(text));
	struct sales_buf b = {0};

	(void)state;
	assert_non_null(j);
	assert_int_equal(core_json_string(j, core_json_at(j, 0, 0), &b), 0);
	assert_string_equal(b.data, "old text");
	b.len = 0;
	assert_int_equal(core_json_string(j, core_json_at(j, 0, 1), &b), 0);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	core_buf_free(&b);
	core_json_free(j);
}

/* No text is no JSON value, and NULL is not read (memcpy from NULL). */
static void
test_empty(void **state)
{
	(void)state;
	assert_null(core_json_parse(NULL, 0));
	assert_null(core_json_parse("", 0));
	assert_null(core_json_parse("[]", 0));
}

static void
test_accessors(void **state)
{
	const char *text = "{\"id\":42,\"price\":25.50,\"name\":\"a\\\"b\\u00e9\","
	    "\"list\":[{\"x\":1},[2,3],\"s\"],\"ok\":true,\"n\":null,"
	    "\"k\\u0065y\":7,\"big\":9223372036854775808,\"frac\":1.0}";
	struct sales_json *j = core_json_parse(text, strlen(text));
	struct sales_buf b = {0};
	long long i;
	double d;
	int v, t, flag;
	size_t len;
	const char *raw;

	(void)state;
	assert_non_null(j);
	assert_int_equal(core_json_type(j, 0), SALES_JSON_OBJECT);
	assert_int_equal(core_json_len(j, 0), 9);
	assert_int_equal(core_json_int(j, core_json_get(j, 0, "id"), &i), 0);
	assert_int_equal(i, 42);
	assert_int_equal(core_json_double(j, core_json_get(j, 0, "price"), &d), 0);
	assert_true(d == 25.5);
	raw = core_json_raw(j, core_json_get(j, 0, "price"), &len);
	assert_int_equal(len, 5);
	assert_memory_equal(raw, "25.50", 5);
	assert_int_equal(core_json_string(j, core_json_get(j, 0, "name"), &b), 0);
	assert_string_equal(b.data, "a\"b\xc3\xa9");
	core_buf_free(&b);
	t = core_json_get(j, 0, "list");
	assert_int_equal(core_json_len(j, t), 3);
	assert_int_equal(core_json_type(j, core_json_at(j, t, 1)), SALES_JSON_ARRAY);
	assert_int_equal(core_json_type(j, core_json_at(j, t, 2)), SALES_JSON_STRING);
	assert_int_equal(core_json_at(j, t, 3), -1);
	assert_int_equal(core_json_bool(j, core_json_get(j, 0, "ok"), &flag), 0);
	assert_int_equal(flag, 1);
	assert_int_equal(core_json_type(j, core_json_get(j, 0, "n")), SALES_JSON_NULL);
	/* Escaped keys match their decoded form. */
	assert_int_equal(core_json_int(j, core_json_get(j, 0, "key"), &i), 0);
	assert_int_equal(i, 7);
	assert_int_equal(core_json_int(j, core_json_get(j, 0, "big"), &i), -1);
	assert_int_equal(core_json_int(j, core_json_get(j, 0, "frac"), &i), -1);
	assert_int_equal(core_json_get(j, 0, "absent"), -1);
	assert_int_equal(core_json_get(j, t, "x"), -1);	/* not an object */
	/* Members in order, each with its value. */
	assert_int_equal(core_json_member(j, 0, 3, &v), core_json_get(j, 0, "list") - 1);
	assert_int_equal(v, t);
	assert_int_equal(core_json_member(j, 0, 9, &v), -1);
	core_json_free(j);
}

/*
 * An array of n - 1 numbers is n tokens: around the 128 parsed in one
 * pass (core/json.c), valid documents must read the same on both sides
 * and broken ones must be refused on both sides.
 */
static void
test_token_count_boundary(void **state)
{
	static const char *tails[] = { "]", ",]", "", "}", ",1", "]]",
	    "] 1", ",\"a\":1]", ",[]]" };
	char text[2048];
	struct sales_json *j;
	long long v;
	size_t i, k, len;
	int n, tok;

	(void)state;
	for (n = 1; n <= 260; n++) {
		len = 0;
		text[len++] = '[';
		for (k = 0; k + 1 < (size_t)n; k++)
			len += (size_t)snprintf(text + len, sizeof(text) - len,
			    "%s%zu", k ? "," : "", k % 10);
		for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
			snprintf(text + len, sizeof(text) - len, "%s", tails[i]);
			j = core_json_parse(text, strlen(text));
			if (i == 0 || (i == 8 && n > 1)) {
				assert_non_null(j);
				assert_int_equal(core_json_len(j, 0),
				    n - 1 + (i == 8));
				if (n > 1) {
					tok = core_json_at(j, 0, n - 2);
					assert_int_equal(core_json_int(j, tok,
					    &v), 0);
					assert_int_equal(v, (n - 2) % 10);
				}
				core_json_free(j);
			} else
				assert_null(j);
		}
	}
	/* Many small tokens in very little text: "[[],[],...]". */
	len = 0;
	text[len++] = '[';
	for (k = 0; k < 300; k++) {
		if (k)
			text[len++] = ',';
		text[len++] = '[';
		text[len++] = ']';
	}
	text[len++] = ']';
	j = core_json_parse(text, len);
	assert_non_null(j);
	assert_int_equal(core_json_len(j, 0), 300);
	assert_int_equal(core_json_type(j, core_json_at(j, 0, 299)),
	    SALES_JSON_ARRAY);
	core_json_free(j);
	assert_null(core_json_parse(text, len - 1));
}

static void
test_buf_escaping(void **state)
{
	struct sales_buf b = {0};

	(void)state;
	assert_int_equal(core_buf_json_string(&b, "a\"\\\n\x01\x7f\xc3\xa9", 8), 0);
	assert_string_equal(b.data, "\"a\\\"\\\\\\n\\u0001\\u007f\xc3\xa9\"");
	b.len = 0;
	assert_int_equal(core_buf_printf(&b, "%d-%s", 12, "x"), 0);
	assert_string_equal(b.data, "12-x");
	b.len = 0;
	assert_int_equal(core_buf_time(&b, 1745316000123LL), 0);
	assert_string_equal(b.data, "2025-04-22T10:00:00.123Z");
	core_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_string_reuse),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_buf_escaping),
		cmocka_unit_test(test_token_count_boundary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
