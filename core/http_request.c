/*
 * http_request.c - the request object (struct sales_request, in
 * core/http_int.h): how it is made, reused and freed, and the
 * accessors behind the module table (method, path, param, query,
 * header, body).
 *
 * A request is made when its head begins (core/http_parse.c fills it)
 * and stays valid until its module answers, even if the client has
 * gone meanwhile (its answer is then dropped).  A handler that never
 * answers leaks its request: that is a module bug, and the module's
 * business.  A finished request is kept as its connection's spare, so
 * that a keep-alive client costs no allocation per request.
 *
 * core_http_path() is the path as received, still percent-encoded;
 * "{name}" parameters and query values are decoded.
 *
 * Not here: reading (core/http_parse.c), answering
 * (core/http_response.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "http_int.h"
#include "log.h"
#include "uri.h"

/*
 * Under AddressSanitizer a finished request is freed, not kept as the
 * connection's spare, so that a module using a request after answering
 * it is caught as a use-after-free instead of reading a recycled one.
 */
#ifdef __SANITIZE_ADDRESS__
#define HTTP_NO_SPARE		1
#else
#define HTTP_NO_SPARE		0
#endif
/*
 * What a connection's spare request keeps for the next one: header
 * slots, and string buffers up to these sizes.  Bigger ones are freed,
 * so an idle keep-alive connection holds a few KiB at most.
 */
#define HTTP_KEEP_HEADERS	16
#define HTTP_KEEP_STR		256
#define HTTP_KEEP_BODY		4096

int
core_http_hstr_add(struct hstr *s, const char *data, size_t len)
{
	size_t ncap;
	char *np;

	if (s->len + len + 1 > s->cap) {
		ncap = s->cap ? s->cap : 32;
		while (ncap < s->len + len + 1)
			ncap *= 2;
		if ((np = realloc(s->p, ncap)) == NULL)
			return -1;
		s->p = np;
		s->cap = ncap;
	}
	memcpy(s->p + s->len, data, len);
	s->len += len;
	s->p[s->len] = '\0';
	return 0;
}

static void
hstr_free(struct hstr *s)
{
	free(s->p);
	memset(s, 0, sizeof(*s));
}

/* Empties s for reuse; a buffer bigger than keep is freed instead. */
static void
hstr_reset(struct hstr *s, size_t keep)
{
	if (s->cap > keep)
		hstr_free(s);
	else if (s->p != NULL) {
		s->len = 0;
		s->p[0] = '\0';
	}
}

/* Query-string decoding ('+' is a space); s was checked at parse time. */
static char *
query_decode(const char *s, size_t len)
{
	char *out;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	if (core_uri_decode(s, len, out, 1) == -1) {
		free(out);
		return NULL;
	}
	return out;
}

/* -- requests ----------------------------------------------------------- */

/*
 * A new request, made from the connection's spare when it has one: a
 * keep-alive client then costs no allocation per request for its URL,
 * headers and body.
 */
struct sales_request *
core_http_req_new(struct http_conn *c)
{
	struct sales_request *r;

	if ((r = c->spare) != NULL)
		c->spare = NULL;
	else if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->conn = c;
	r->method = "GET";
	r->keep_alive = 1;
	return r;
}

void
core_http_req_destroy(struct sales_request *r)
{
	size_t i;

	if (r == NULL)
		return;
	hstr_free(&r->url);
	hstr_free(&r->pq);
	for (i = 0; i < r->capheaders; i++) {
		hstr_free(&r->headers[i].name);
		hstr_free(&r->headers[i].value);
	}
	free(r->headers);
	hstr_free(&r->body);
	core_route_match_free(&r->match);
	for (i = 0; i < r->nqparams; i++) {
		free(r->qparams[i].name);
		free(r->qparams[i].value);
	}
	free(r->qparams);
	hstr_free(&r->extra);
	if (r->resp)
		evbuffer_free(r->resp);
	free(r);
}

/*
 * Done with r: it becomes its connection's spare, emptied but with its
 * (small) buffers kept, or is freed if the connection is gone or has a
 * spare already.  Nothing of the old request survives into the next:
 * every field is reset as calloc would leave it, only buffers stay.
 */
void
core_http_req_free(struct sales_request *r)
{
	struct http_conn *c;
	struct sales_request keep;
	size_t i, nh;

	if (r == NULL)
		return;
	if ((c = r->conn) == NULL || c->spare != NULL || HTTP_NO_SPARE) {
		core_http_req_destroy(r);
		return;
	}
	core_route_match_free(&r->match);
	for (i = 0; i < r->nqparams; i++) {
		free(r->qparams[i].name);
		free(r->qparams[i].value);
	}
	free(r->qparams);
	if (r->resp)
		evbuffer_free(r->resp);
	nh = r->capheaders;
	if (nh > HTTP_KEEP_HEADERS) {
		for (i = 0; i < nh; i++) {
			hstr_free(&r->headers[i].name);
			hstr_free(&r->headers[i].value);
		}
		free(r->headers);
		r->headers = NULL;
		nh = 0;
	}
	for (i = 0; i < nh; i++) {
		hstr_reset(&r->headers[i].name, HTTP_KEEP_STR);
		hstr_reset(&r->headers[i].value, HTTP_KEEP_STR);
	}
	keep.url = r->url;
	keep.pq = r->pq;
	keep.body = r->body;
	keep.extra = r->extra;
	keep.headers = r->headers;
	memset(r, 0, sizeof(*r));
	r->url = keep.url;
	r->pq = keep.pq;
	r->body = keep.body;
	r->extra = keep.extra;
	r->headers = keep.headers;
	r->capheaders = nh;
	hstr_reset(&r->url, HTTP_KEEP_STR);
	hstr_reset(&r->pq, HTTP_KEEP_STR);
	hstr_reset(&r->body, HTTP_KEEP_BODY);
	hstr_reset(&r->extra, HTTP_KEEP_STR);
	c->spare = r;
}

/* True when a header named name lists token (comma-separated, any case). */
int
core_http_req_has_token(struct sales_request *r, const char *name,
    const char *token)
{
	const char *p, *e;
	size_t i, tlen = strlen(token), n;

	for (i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name.p, name) != 0 ||
		    r->headers[i].value.p == NULL)
			continue;
		for (p = r->headers[i].value.p; *p; p = *e ? e + 1 : e) {
			while (*p == ' ' || *p == '\t')
				p++;
			if ((e = strchr(p, ',')) == NULL)
				e = p + strlen(p);
			n = (size_t)(e - p);
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n == tlen && strncasecmp(p, token, n) == 0)
				return 1;
		}
	}
	return 0;
}

/* -- the module-facing services ------------------------------------------ */

const char *
core_http_method(struct sales_request *req)
{
	return req->method;
}

const char *
core_http_path(struct sales_request *req)
{
	return req->path ? req->path : "/";
}

const char *
core_http_param(struct sales_request *req, const char *name)
{
	int i;

	for (i = 0; i < req->match.nparams; i++)
		if (strcmp(req->match.names[i], name) == 0)
			return req->match.values[i];
	return NULL;
}

/* Splits the query once, on first use; a repeated name: the first wins. */
static int
req_parse_query(struct sales_request *r)
{
	const char *p, *amp, *eq;
	struct qparam *np;
	size_t n = 1, len;

	r->qparsed = 1;
	if (r->query == NULL || r->query[0] == '\0')
		return 0;
	for (p = r->query; *p; p++)
		if (*p == '&')
			n++;
	if ((r->qparams = calloc(n, sizeof(*r->qparams))) == NULL)
		return -1;
	for (p = r->query; ; p = amp + 1) {
		if ((amp = strchr(p, '&')) == NULL)
			amp = p + strlen(p);
		len = (size_t)(amp - p);
		if (len > 0) {
			np = &r->qparams[r->nqparams];
			eq = memchr(p, '=', len);
			np->name = query_decode(p, eq ? (size_t)(eq - p) : len);
			np->value = eq ? query_decode(eq + 1,
			    (size_t)(amp - eq - 1)) : strdup("");
			if (np->name == NULL || np->value == NULL) {
				free(np->name);
				free(np->value);
				return -1;
			}
			r->nqparams++;
		}
		if (*amp == '\0')
			break;
	}
	return 0;
}

const char *
core_http_query(struct sales_request *req, const char *name)
{
	size_t i;

	if (!req->qparsed && req_parse_query(req) == -1)
		log_error("query of \"%s\": out of memory", req->path);
	for (i = 0; i < req->nqparams; i++)
		if (strcmp(req->qparams[i].name, name) == 0)
			return req->qparams[i].value;
	return NULL;
}

const char *
core_http_header(struct sales_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name.p, name) == 0)
			return req->headers[i].value.p ?
			    req->headers[i].value.p : "";
	return NULL;
}

const char *
core_http_body(struct sales_request *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.p ? req->body.p : "";
}
