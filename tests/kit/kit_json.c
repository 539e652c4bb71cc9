/*
 * kit_json.c - reading one value out of a JSON answer by its path, so
 * that a test asserts on "topProducts.0.revenue" in one line.  The
 * parsing is the core's (core/json.c), as the module's own reads are.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "kit.h"

/* The token at path below tok, or -1. */
static int
kit_json_walk(const struct sales_json *j, int tok, const char *path)
{
	char seg[128], *end;
	size_t n;
	long i;

	while (tok >= 0 && *path != '\0') {
		n = strcspn(path, ".");
		if (n == 0 || n >= sizeof(seg))
			return -1;
		memcpy(seg, path, n);
		seg[n] = '\0';
		path += n + (path[n] == '.');
		if (core_json_type(j, tok) == SALES_JSON_ARRAY) {
			i = strtol(seg, &end, 10);
			if (*end != '\0' || i < 0 || i > 1000000)
				return -1;
			tok = core_json_at(j, tok, (int)i);
		} else
			tok = core_json_get(j, tok, seg);
	}
	return tok;
}

const char *
sales_kit_json(struct sales_kit *kit, const char *text, const char *path)
{
	struct sales_json *j;
	const char *s;
	size_t len;
	int tok, rc;

	kit->json.len = 0;
	if (text == NULL || path == NULL ||
	    (j = core_json_parse(text, strlen(text))) == NULL)
		return NULL;
	if ((tok = kit_json_walk(j, 0, path)) < 0)
		rc = -1;
	else if (core_json_type(j, tok) == SALES_JSON_STRING)
		rc = core_json_string(j, tok, &kit->json);
	else
		rc = (s = core_json_raw(j, tok, &len)) == NULL ? -1 :
		    core_buf_append(&kit->json, s, len);
	if (rc == 0 && kit->json.data == NULL)
		rc = core_buf_append(&kit->json, "", 0);
	core_json_free(j);
	return rc == 0 ? kit->json.data : NULL;
}
