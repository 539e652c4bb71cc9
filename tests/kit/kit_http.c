/*
 * kit_http.c - the fake HTTP server: sales_kit_request() builds a
 * request from a method and a target, the core's router picks the
 * handler, and the reply records what the module answers, whenever it
 * does.  No sockets, no parsing of a request head: the test hands the
 * parts.  Requests live until the kit is freed, so a test can read a
 * reply after the module answered it from a storage callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "kit.h"
#include "log.h"
#include "router.h"
#include "uri.h"
#include "utf8.h"

struct kit_pair {
	char	*name;
	char	*value;
};

struct sales_request {
	struct sales_kit_reply	 reply;		/* first: the test's view */
	char			*method;
	char			*path;
	struct core_route_match	 match;
	struct kit_vec		 query;		/* struct kit_pair */
	struct kit_vec		 headers;	/* struct kit_pair */
	char			*body;
	size_t			 body_len;
	char			*content_type;
	struct kit_vec		 out;		/* response headers */
	char			*answer;
};

/* Which module owns a pattern: the router does not say. */
static struct kit_vec	owners;		/* struct kit_pair: pattern, name */

static void
kit_pairs_free(struct kit_vec *v)
{
	struct kit_pair *p;
	size_t i;

	for (i = 0; i < v->n; i++) {
		p = v->v[i];
		free(p->name);
		free(p->value);
		free(p);
	}
	free(v->v);
	memset(v, 0, sizeof(*v));
}

static int
kit_pair_add(struct kit_vec *v, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	struct kit_pair *p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->name = kit_memdup(name, nlen)) == NULL ||
	    (p->value = kit_memdup(value, vlen)) == NULL ||
	    kit_push(v, p) == -1) {
		if (p != NULL) {
			free(p->name);
			free(p->value);
		}
		free(p);
		return -1;
	}
	return 0;
}

static const char *
kit_pair_get(struct kit_vec *v, const char *name, int nocase)
{
	struct kit_pair *p;
	size_t i;

	for (i = 0; i < v->n; i++) {
		p = v->v[i];
		if ((nocase ? strcasecmp(p->name, name) :
		    strcmp(p->name, name)) == 0)
			return p->value;
	}
	return NULL;
}

static int
kit_route_owner(struct sales_module *self, const char *pattern)
{
	return kit_pair_add(&owners, pattern, strlen(pattern), self->name,
	    strlen(self->name));
}

int
kit_http_route(struct sales_module *self, const char *method,
    const char *pattern, sales_http_handler handler, void *arg)
{
	if (!kit_in_init(self, "http_route"))
		return -1;
	if (core_router_add(self->name, method, pattern, handler, arg) == -1)
		return -1;
	return kit_route_owner(self, pattern);
}

int
kit_http_route_open(struct sales_module *self, const char *pattern,
    sales_http_handler handler, void *arg)
{
	if (!kit_in_init(self, "http_route_open"))
		return -1;
	if (core_router_add_open(self->name, pattern, handler, arg) == -1)
		return -1;
	return kit_route_owner(self, pattern);
}

static struct sales_module *
kit_module_named(const char *name)
{
	struct sales_module *m;

	for (m = kit_cur->mods; m != NULL && name != NULL; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

const char *
kit_http_method(struct sales_request *req)
{
	return req->method;
}

const char *
kit_http_path(struct sales_request *req)
{
	return req->path;
}

const char *
kit_http_param(struct sales_request *req, const char *name)
{
	int i;

	for (i = 0; i < req->match.nparams; i++)
		if (strcmp(req->match.names[i], name) == 0)
			return req->match.values[i];
	return NULL;
}

const char *
kit_http_query(struct sales_request *req, const char *name)
{
	return kit_pair_get(&req->query, name, 0);
}

const char *
kit_http_header(struct sales_request *req, const char *name)
{
	return kit_pair_get(&req->headers, name, 1);
}

const char *
kit_http_body(struct sales_request *req, size_t *len)
{
	if (len != NULL)
		*len = req->body_len;
	return req->body;
}

int
kit_http_add_header(struct sales_request *req, const char *name,
    const char *value)
{
	if (req->answer != NULL || name == NULL || value == NULL ||
	    *name == '\0' || strpbrk(name, "\r\n:") != NULL ||
	    strpbrk(value, "\r\n") != NULL)
		return -1;
	return kit_pair_add(&req->out, name, strlen(name), value,
	    strlen(value));
}

void
kit_http_respond(struct sales_request *req, int status,
    const char *content_type, const char *body, size_t len)
{
	if (req->answer != NULL) {
		core_log("kit", SALES_LOG_ERROR, "%s %s: answered twice (%d "
		    "after %d): a bug the server may not survive",
		    req->method, req->path, status, req->reply.status);
		return;
	}
	if (body == NULL)
		len = 0;
	if ((req->answer = kit_memdup(body ? body : "", len)) == NULL ||
	    (req->content_type = kit_strdup(content_type ? content_type :
	    "application/json")) == NULL) {
		core_log("kit", SALES_LOG_ERROR, "out of memory");
		return;
	}
	req->reply.status = status;
	req->reply.body = req->answer;
	req->reply.len = len;
	/* HEAD: the headers of the GET, no body (the core sends none). */
	if (strcmp(req->method, "HEAD") == 0) {
		req->answer[0] = '\0';
		req->reply.len = 0;
	}
}

void
kit_http_error(struct sales_request *req, int status, const char *code,
    const char *message, const char *field)
{
	struct sales_buf b = {0};

	if (code == NULL)
		code = "error";
	if (message == NULL)
		message = code;
	core_buf_printf(&b, "{\"error\":{\"code\":");
	core_buf_json_string(&b, code, strlen(code));
	core_buf_printf(&b, ",\"message\":");
	core_buf_json_string(&b, message, strlen(message));
	if (field != NULL) {
		core_buf_printf(&b, ",\"field\":");
		core_buf_json_string(&b, field, strlen(field));
	}
	core_buf_printf(&b, "}}");
	kit_http_respond(req, status, NULL, b.data, b.len);
	core_buf_free(&b);
}

const char *
sales_kit_reply_header(const struct sales_kit_reply *reply, const char *name)
{
	struct sales_request *req = (struct sales_request *)reply;

	if (req->answer == NULL)
		return NULL;
	if (strcasecmp(name, "Content-Type") == 0)
		return req->content_type;
	return kit_pair_get(&req->out, name, 1);
}

/* s[0..len) percent-decoded and valid UTF-8, as the core hands it on. */
static char *
kit_decode(const char *s, size_t len, int plus_space)
{
	char *out;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	if (core_uri_decode(s, len, out, plus_space) == -1 ||
	    !core_utf8_valid((const unsigned char *)out, strlen(out))) {
		free(out);
		return NULL;
	}
	return out;
}

static int
kit_parse_query(struct sales_request *req, const char *q)
{
	const char *amp, *eq;
	char *k, *v;
	size_t n;
	int rc;

	for (; q != NULL && *q != '\0'; q = *amp ? amp + 1 : amp) {
		amp = q + strcspn(q, "&");
		if (amp == q)
			continue;
		eq = memchr(q, '=', (size_t)(amp - q));
		n = eq ? (size_t)(eq - q) : (size_t)(amp - q);
		k = kit_decode(q, n, 1);
		v = eq ? kit_decode(eq + 1, (size_t)(amp - eq - 1), 1) :
		    kit_strdup("");
		rc = k && v ? kit_pair_add(&req->query, k, strlen(k), v,
		    strlen(v)) : -1;
		free(k);
		free(v);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static int
kit_parse_headers(struct sales_request *req, const char *const *headers)
{
	const char *colon, *v;

	for (; headers != NULL && *headers != NULL; headers++) {
		if ((colon = strchr(*headers, ':')) == NULL ||
		    colon == *headers)
			return -1;
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (kit_pair_add(&req->headers, *headers,
		    (size_t)(colon - *headers), v, strlen(v)) == -1)
			return -1;
	}
	return 0;
}

const struct sales_kit_reply *
sales_kit_request(struct sales_kit *kit, const char *method,
    const char *target, const char *const *headers, const char *body,
    size_t len)
{
	struct sales_request *req;
	struct sales_module *prev;
	const char *q;
	char msg[192], *raw;
	size_t plen;
	enum core_route_result rr;

	if (method == NULL || *method == '\0' || target == NULL ||
	    target[0] != '/' || (req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->reply.body = "";
	if (kit_push(&kit->requests, req) == -1) {
		free(req);
		return NULL;
	}
	q = strchr(target, '?');
	plen = q ? (size_t)(q - target) : strlen(target);
	if ((req->method = kit_strdup(method)) == NULL ||
	    (req->body = kit_memdup(body ? body : "", body ? len : 0)) == NULL)
		return NULL;
	req->body_len = body ? len : 0;
	if (kit_parse_headers(req, headers) == -1)
		return NULL;
	if ((req->path = kit_decode(target, plen, 0)) == NULL ||
	    kit_parse_query(req, q ? q + 1 : NULL) == -1) {
		if (req->path == NULL)
			req->path = kit_memdup(target, plen);
		kit_http_error(req, 400, "bad_request", "malformed "
		    "percent-encoding or UTF-8 in the target", NULL);
		return &req->reply;
	}
	/* The router decodes each component itself ("%2F" stays inside). */
	if ((raw = kit_memdup(target, plen)) == NULL)
		return NULL;
	rr = core_router_match(method, raw, &req->match);
	free(raw);
	if (rr == CORE_ROUTE_NOT_FOUND) {
		kit_http_error(req, 404, "not_found", "no such resource",
		    NULL);
	} else if (rr == CORE_ROUTE_BAD_METHOD) {
		snprintf(msg, sizeof(msg), "use %s", req->match.allow);
		kit_http_error(req, 405, "method_not_allowed", msg, NULL);
		kit_pair_add(&req->out, "Allow", 5, req->match.allow,
		    strlen(req->match.allow));
	} else {
		prev = kit_enter(kit_module_named(kit_pair_get(&owners,
		    req->match.pattern, 0)));
		req->match.handler(req, req->match.arg);
		kit_leave(prev);
	}
	return &req->reply;
}

void
kit_http_free(void)
{
	struct sales_request *req;
	size_t i;

	for (i = 0; i < kit_cur->requests.n; i++) {
		req = kit_cur->requests.v[i];
		core_route_match_free(&req->match);
		kit_pairs_free(&req->query);
		kit_pairs_free(&req->headers);
		kit_pairs_free(&req->out);
		free(req->method);
		free(req->path);
		free(req->body);
		free(req->content_type);
		free(req->answer);
		free(req);
	}
	free(kit_cur->requests.v);
	memset(&kit_cur->requests, 0, sizeof(kit_cur->requests));
	kit_pairs_free(&owners);
}
