/*
 * json.c - strict JSON reading for modules, on Debian's jsmn.
 *
 * jsmn tokenises quickly but forgives a lot (missing commas, bad
 * numbers, trailing bytes, raw control characters).  So after jsmn has
 * run, one pass over the tokens checks the rest of RFC 8259: the text
 * between tokens, number and literal grammar, string escapes, nesting
 * depth, UTF-8, and that exactly one value fills the input.  The same
 * pass records where each subtree ends, so that walking members is O(1)
 * per step.  Nothing here allocates per lookup.
 *
 * Nesting is bounded before jsmn runs: with parent links, jsmn walks
 * up from the last token to the innermost open one on every closing
 * bracket, so n nested brackets cost O(n^2) (a 1 MiB "[[[...]]]" held
 * the loop for minutes).  A token is walked over only by the brackets
 * that were open above it when it was made, so with at most
 * CORE_JSON_MAX_DEPTH of them the walks cost at most that many steps
 * per token, and the parse is linear in the input.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "buf.h"
#include "json.h"
#include "uri.h"
#include "utf8.h"

struct sales_json {
	char		*text;		/* copy, space-terminated for jsmn */
	size_t		 len;
	jsmntok_t	*tok;
	int		*next;		/* index just past each token's subtree */
	int		 ntok;
	int		 own_tok;	/* tok and next allocated apart */
};

/*
 * Tokens reserved in the same allocation as the text, at most: enough
 * for any small document (a token takes at least two bytes of text),
 * so the usual request body costs one malloc and one jsmn pass.  A
 * bigger document is counted first and gets arrays of its own.
 */
#define JSON_INLINE_TOKENS	128

static int	json_check(struct sales_json *, int, int, int *);

/* A token's extent in the text, quotes included for strings. */
static int
tok_start(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static int
tok_end(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* Only white space and, if sep, exactly one sep between a and b. */
static int
json_gap(const char *s, int a, int b, char sep)
{
	int seen = 0;

	for (; a < b; a++) {
		switch (s[a]) {
		case ' ': case '\t': case '\n': case '\r':
			break;
		default:
			if (sep == 0 || s[a] != sep || seen++)
				return -1;
		}
	}
	return sep && !seen ? -1 : 0;
}

static int
json_number_ok(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else {
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return -1;
	}
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return -1;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return -1;
	}
	return i == n ? 0 : -1;
}

static long
hex4(const char *s)
{
	long v = 0;
	int i, h;

	for (i = 0; i < 4; i++) {
		if ((h = core_hexval((unsigned char)s[i])) < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/*
 * Decodes the string at s[0..n) (no quotes) into out, or only checks it
 * when out is NULL.  Lone surrogates are errors: they cannot be UTF-8.
 */
static int
json_unescape(const char *s, size_t n, struct sales_buf *out)
{
	size_t i, run;
	long cp, lo;
	char u[4];
	int ulen;

	for (i = 0; i < n; ) {
		for (run = 0; i + run < n && s[i + run] != '\\'; run++)
			if ((unsigned char)s[i + run] < 0x20)
				return -1;
		if (run) {
			if (out && core_buf_append(out, s + i, run) == -1)
				return -1;
			i += run;
			continue;
		}
		if (++i >= n)
			return -1;
		switch (s[i++]) {
		case '"':  u[0] = '"';  ulen = 1; break;
		case '\\': u[0] = '\\'; ulen = 1; break;
		case '/':  u[0] = '/';  ulen = 1; break;
		case 'b':  u[0] = '\b'; ulen = 1; break;
		case 'f':  u[0] = '\f'; ulen = 1; break;
		case 'n':  u[0] = '\n'; ulen = 1; break;
		case 'r':  u[0] = '\r'; ulen = 1; break;
		case 't':  u[0] = '\t'; ulen = 1; break;
		case 'u':
			if (i + 4 > n || (cp = hex4(s + i)) < 0)
				return -1;
			i += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' ||
				    (lo = hex4(s + i + 2)) < 0xdc00 || lo > 0xdfff)
					return -1;
				i += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
				ulen = 1;
			} else if (cp < 0x800) {
				u[0] = (char)(0xc0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3f));
				ulen = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xe0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (char)(0x80 | (cp & 0x3f));
				ulen = 3;
			} else {
				u[0] = (char)(0xf0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (char)(0x80 | (cp & 0x3f));
				ulen = 4;
			}
			break;
		default:
			return -1;
		}
		if (out && core_buf_append(out, u, ulen) == -1)
			return -1;
	}
	return 0;
}

/*
 * Refuses text that nests arrays and objects more than
 * CORE_JSON_MAX_DEPTH deep, in one pass that skips strings (and the
 * byte after each backslash in them, as jsmn does).  It decides
 * nothing else: an unbalanced or otherwise bad text within the limit
 * is left for jsmn and json_check to refuse.
 */
static int
json_depth_ok(const char *s, size_t len)
{
	size_t i;
	int depth = 0, instr = 0;

	for (i = 0; i < len; i++) {
		if (instr) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				instr = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			instr = 1;
			break;
		case '[': case '{':
			if (++depth > CORE_JSON_MAX_DEPTH)
				return 0;
			break;
		case ']': case '}':
			/*
			 * Never valid; and jsmn would walk to the root
			 * for it, without closing anything.
			 */
			if (--depth < 0)
				return 0;
			break;
		}
	}
	return 1;
}

/* Checks token i and its subtree; *after is the index past it. */
static int
json_check(struct sales_json *j, int i, int depth, int *after)
{
	jsmntok_t *t = &j->tok[i];
	const char *s = j->text;
	int k, n, c, v, prev;

	if (i >= j->ntok || depth > CORE_JSON_MAX_DEPTH)
		return -1;
	switch (t->type) {
	case JSMN_STRING:
		if (t->size > 1 ||
		    json_unescape(s + t->start, t->end - t->start, NULL) == -1)
			return -1;
		*after = i + 1;
		break;
	case JSMN_PRIMITIVE:
		n = t->end - t->start;
		if (!((n == 4 && memcmp(s + t->start, "true", 4) == 0) ||
		    (n == 5 && memcmp(s + t->start, "false", 5) == 0) ||
		    (n == 4 && memcmp(s + t->start, "null", 4) == 0) ||
		    json_number_ok(s + t->start, n) == 0))
			return -1;
		*after = i + 1;
		break;
	case JSMN_OBJECT:
	case JSMN_ARRAY:
		prev = t->start + 1;
		c = i + 1;
		for (k = 0; k < t->size; k++) {
			if (c >= j->ntok || json_gap(s, prev, tok_start(&j->tok[c]),
			    k ? ',' : 0) == -1)
				return -1;
			if (t->type == JSMN_OBJECT) {
				/* A key, then ':' and its value. */
				if (j->tok[c].type != JSMN_STRING ||
				    j->tok[c].size != 1 ||
				    json_unescape(s + j->tok[c].start,
				    j->tok[c].end - j->tok[c].start, NULL) == -1 ||
				    c + 1 >= j->ntok ||
				    json_gap(s, tok_end(&j->tok[c]),
				    tok_start(&j->tok[c + 1]), ':') == -1)
					return -1;
				j->next[c] = c + 1;
				c++;
			}
			v = c;
			if (json_check(j, v, depth + 1, &c) == -1)
				return -1;
			prev = tok_end(&j->tok[v]);
		}
		if (json_gap(s, prev, t->end - 1, 0) == -1)
			return -1;
		*after = c;
		break;
	default:
		return -1;
	}
	j->next[i] = *after;
	return 0;
}

struct sales_json *
core_json_parse(const char *text, size_t len)
{
	struct sales_json *j;
	jsmn_parser p;
	size_t cap;
	int n, after;

	/* Empty text is no JSON value, and memcpy() may not read NULL. */
	if (text == NULL || len == 0 || len > 0x7fffffff ||
	    !json_depth_ok(text, len) ||
	    !core_utf8_valid((const unsigned char *)text, len))
		return NULL;
	cap = len / 2 + 2 < JSON_INLINE_TOKENS ? len / 2 + 2 :
	    JSON_INLINE_TOKENS;
	/* One block: the struct, cap tokens, cap next indices, the text. */
	if ((j = malloc(sizeof(*j) + cap * (sizeof(*j->tok) +
	    sizeof(*j->next)) + len + 2)) == NULL)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->tok = (jsmntok_t *)(j + 1);
	j->next = (int *)(j->tok + cap);
	j->text = (char *)(j->next + cap);
	memcpy(j->text, text, len);
	/* jsmn in strict mode needs a delimiter after a bare primitive. */
	j->text[len] = ' ';
	j->text[len + 1] = '\0';
	j->len = len;
	/*
	 * jsmn with tokens checks at least what its counting mode does, and
	 * returns the same count, so one pass is enough when they fit.
	 */
	jsmn_init(&p);
	n = jsmn_parse(&p, j->text, len + 1, j->tok, (unsigned int)cap);
	if (n == JSMN_ERROR_NOMEM) {
		jsmn_init(&p);
		if ((n = jsmn_parse(&p, j->text, len + 1, NULL, 0)) <= 0)
			goto fail;
		j->own_tok = 1;
		j->tok = NULL;
		j->next = NULL;
		if ((j->tok = calloc(n, sizeof(*j->tok))) == NULL ||
		    (j->next = calloc(n, sizeof(*j->next))) == NULL)
			goto fail;
		jsmn_init(&p);
		n = jsmn_parse(&p, j->text, len + 1, j->tok, n);
	}
	if ((j->ntok = n) <= 0)
		goto fail;
	if (json_check(j, 0, 0, &after) == -1 || after != j->ntok)
		goto fail;
	/* One value, surrounded by white space only. */
	if (json_gap(j->text, 0, tok_start(&j->tok[0]), 0) == -1 ||
	    json_gap(j->text, tok_end(&j->tok[0]), (int)len, 0) == -1)
		goto fail;
	return j;
fail:
	core_json_free(j);
	return NULL;
}

void
core_json_free(struct sales_json *j)
{
	if (j == NULL)
		return;
	if (j->own_tok) {
		free(j->tok);
		free(j->next);
	}
	free(j);
}

static const jsmntok_t *
json_tok(const struct sales_json *j, int tok)
{
	if (j == NULL || tok < 0 || tok >= j->ntok)
		return NULL;
	return &j->tok[tok];
}

enum sales_json_type
core_json_type(const struct sales_json *j, int tok)
{
	const jsmntok_t *t = json_tok(j, tok);

	if (t == NULL)
		return SALES_JSON_INVALID;
	switch (t->type) {
	case JSMN_OBJECT:
		return SALES_JSON_OBJECT;
	case JSMN_ARRAY:
		return SALES_JSON_ARRAY;
	case JSMN_STRING:
		return SALES_JSON_STRING;
	case JSMN_PRIMITIVE:
		switch (j->text[t->start]) {
		case 't': case 'f':
			return SALES_JSON_BOOL;
		case 'n':
			return SALES_JSON_NULL;
		default:
			return SALES_JSON_NUMBER;
		}
	default:
		return SALES_JSON_INVALID;
	}
}

int
core_json_len(const struct sales_json *j, int tok)
{
	const jsmntok_t *t = json_tok(j, tok);

	if (t == NULL || (t->type != JSMN_OBJECT && t->type != JSMN_ARRAY))
		return -1;
	return t->size;
}

int
core_json_at(const struct sales_json *j, int arr, int i)
{
	const jsmntok_t *t = json_tok(j, arr);
	int c, k;

	if (t == NULL || t->type != JSMN_ARRAY || i < 0 || i >= t->size)
		return -1;
	for (c = arr + 1, k = 0; k < i; k++)
		c = j->next[c];
	return c;
}

int
core_json_member(const struct sales_json *j, int obj, int i, int *value)
{
	const jsmntok_t *t = json_tok(j, obj);
	int c, k;

	if (t == NULL || t->type != JSMN_OBJECT || i < 0 || i >= t->size)
		return -1;
	for (c = obj + 1, k = 0; k < i; k++)
		c = j->next[c + 1];
	if (value)
		*value = c + 1;
	return c;
}

int
core_json_get(const struct sales_json *j, int obj, const char *key)
{
	const jsmntok_t *t = json_tok(j, obj), *kt;
	size_t klen = strlen(key);
	struct sales_buf b = {0};
	int c, k, found = -1;

	if (t == NULL || t->type != JSMN_OBJECT)
		return -1;
	for (c = obj + 1, k = 0; k < t->size; k++, c = j->next[c + 1]) {
		kt = &j->tok[c];
		if (memchr(j->text + kt->start, '\\', kt->end - kt->start)) {
			b.len = 0;
			if (json_unescape(j->text + kt->start,
			    kt->end - kt->start, &b) == 0 && b.len == klen &&
			    memcmp(b.data, key, klen) == 0)
				found = c + 1;
		} else if ((size_t)(kt->end - kt->start) == klen &&
		    memcmp(j->text + kt->start, key, klen) == 0)
			found = c + 1;
		if (found != -1)
			break;
	}
	core_buf_free(&b);
	return found;
}

const char *
core_json_raw(const struct sales_json *j, int tok, size_t *len)
{
	const jsmntok_t *t = json_tok(j, tok);

	if (t == NULL)
		return NULL;
	if (len)
		*len = (size_t)(t->end - t->start);
	return j->text + t->start;
}

int
core_json_string(const struct sales_json *j, int tok, struct sales_buf *out)
{
	const jsmntok_t *t = json_tok(j, tok);

	if (t == NULL || t->type != JSMN_STRING)
		return -1;
	/*
	 * Terminates out at its length even when the string is empty and
	 * out is reused (len reset to 0): data is always a C string.
	 */
	if (core_buf_append(out, "", 0) == -1)
		return -1;
	return json_unescape(j->text + t->start, t->end - t->start, out);
}

int
core_json_int(const struct sales_json *j, int tok, long long *out)
{
	const jsmntok_t *t = json_tok(j, tok);
	char tmp[32], *end;
	size_t n;
	long long v;

	if (core_json_type(j, tok) != SALES_JSON_NUMBER)
		return -1;
	n = (size_t)(t->end - t->start);
	if (n >= sizeof(tmp) || strcspn(j->text + t->start, ".eE") < n)
		return -1;
	memcpy(tmp, j->text + t->start, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int
core_json_double(const struct sales_json *j, int tok, double *out)
{
	const jsmntok_t *t = json_tok(j, tok);
	char tmp[512], *end;
	size_t n;
	double v;

	if (core_json_type(j, tok) != SALES_JSON_NUMBER)
		return -1;
	n = (size_t)(t->end - t->start);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, j->text + t->start, n);
	tmp[n] = '\0';
	v = strtod(tmp, &end);
	if (*end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int
core_json_bool(const struct sales_json *j, int tok, int *out)
{
	if (core_json_type(j, tok) != SALES_JSON_BOOL)
		return -1;
	*out = j->text[j->tok[tok].start] == 't';
	return 0;
}
