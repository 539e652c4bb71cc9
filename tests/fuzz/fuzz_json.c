/*
 * fuzz_json.c - libFuzzer harness for core/json.c: core_json_parse()
 * on the input, then every getter on every token, checking what must
 * hold for any accepted document: the root spans the input, each
 * container's elements are reachable and in order, a string decodes,
 * a number that reads as an integer reads the same as a double.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
walk(const struct sales_json *j, int tok, int depth)
{
	struct sales_buf b = {0};
	const char *raw;
	size_t len;
	long long ll;
	double d;
	int n, i, k, v, flag;

	if (depth > CORE_JSON_MAX_DEPTH)
		abort();
	if ((raw = core_json_raw(j, tok, &len)) == NULL)
		abort();
	switch (core_json_type(j, tok)) {
	case SALES_JSON_ARRAY:
		if ((n = core_json_len(j, tok)) < 0)
			abort();
		for (i = 0, k = tok; i < n; i++) {
			if ((v = core_json_at(j, tok, i)) <= k)
				abort();
			k = v;
			walk(j, v, depth + 1);
		}
		if (core_json_at(j, tok, n) != -1 ||
		    core_json_member(j, tok, 0, &v) != -1)
			abort();
		break;
	case SALES_JSON_OBJECT:
		if ((n = core_json_len(j, tok)) < 0)
			abort();
		for (i = 0; i < n; i++) {
			if ((k = core_json_member(j, tok, i, &v)) <= tok ||
			    core_json_type(j, k) != SALES_JSON_STRING)
				abort();
			walk(j, v, depth + 1);
			/* A key finds a value: its own or an earlier twin's. */
			b.len = 0;
			if (core_json_string(j, k, &b) == -1)
				abort();
			if (memchr(b.data, '\0', b.len) == NULL &&
			    core_json_get(j, tok, b.data) == -1)
				abort();
		}
		if (core_json_member(j, tok, n, &v) != -1 ||
		    core_json_at(j, tok, 0) != -1)
			abort();
		break;
	case SALES_JSON_STRING:
		if (core_json_string(j, tok, &b) == -1 ||
		    core_json_int(j, tok, &ll) != -1)
			abort();
		break;
	case SALES_JSON_NUMBER:
		if (core_json_int(j, tok, &ll) == 0 &&
		    (core_json_double(j, tok, &d) == -1 ||
		    d != (double)ll))
			abort();
		if (core_json_bool(j, tok, &flag) != -1)
			abort();
		break;
	case SALES_JSON_BOOL:
		if (core_json_bool(j, tok, &flag) == -1 ||
		    flag != (raw[0] == 't'))
			abort();
		break;
	case SALES_JSON_NULL:
		if (len != 4)
			abort();
		break;
	default:
		abort();
	}
	core_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sales_json *j;

	if ((j = core_json_parse((const char *)data, size)) == NULL)
		return 0;
	walk(j, 0, 0);
	/* Out of range is -1 everywhere, never a read. */
	if (core_json_type(j, -1) != SALES_JSON_INVALID ||
	    core_json_len(j, 1 << 30) != -1 ||
	    core_json_raw(j, -5, NULL) != NULL)
		abort();
	core_json_free(j);
	return 0;
}
