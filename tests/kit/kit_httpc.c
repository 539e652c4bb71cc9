/*
 * kit_httpc.c - the fake upstream HTTP client.
 *
 * A call is held, with copies of what the module asked for, until the
 * test answers or fails it, or the fake clock passes its timeout; its
 * callback then runs once, as from core/httpc.c.  Calls still pending
 * when the kit is freed end with "shutdown", as at the server's.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kit.h"
#include "log.h"

struct kit_call {
	struct sales_kit_call	 pub;		/* first: the test's view */
	char			**headers;	/* NULL-terminated copies */
	sales_httpc_cb		 cb;
	void			*arg;
	struct sales_module	*owner;
	int64_t			 deadline;	/* mono ms */
};

static void
kit_call_free(struct kit_call *c)
{
	size_t i;

	for (i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
		free(c->headers[i]);
	free(c->headers);
	free((char *)c->pub.module);
	free((char *)c->pub.method);
	free((char *)c->pub.url);
	free((char *)c->pub.body);
	free(c);
}

static int
kit_call_headers(struct kit_call *c, const char *const *h)
{
	size_t i, n = 0;

	while (h != NULL && h[n] != NULL)
		n++;
	if ((c->headers = calloc(n + 1, sizeof(*c->headers))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if ((c->headers[i] = kit_strdup(h[i])) == NULL)
			return -1;
	return 0;
}

static int
kit_call_add(const char *module, const struct sales_httpc_request *req,
    sales_httpc_cb cb, void *arg)
{
	const char *method;
	struct kit_call *c;

	if (req == NULL || cb == NULL || req->url == NULL ||
	    (strncmp(req->url, "http://", 7) != 0 &&
	    strncmp(req->url, "https://", 8) != 0))
		return -1;
	method = req->method ? req->method : "GET";
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((module != NULL && (c->pub.module = kit_strdup(module)) == NULL) ||
	    (c->pub.method = kit_strdup(method)) == NULL ||
	    (c->pub.url = kit_strdup(req->url)) == NULL ||
	    (c->pub.body = kit_memdup(req->body ? req->body : "",
	    req->body ? req->body_len : 0)) == NULL ||
	    kit_call_headers(c, req->headers) == -1 ||
	    kit_push(&kit_cur->calls, c) == -1) {
		kit_call_free(c);
		return -1;
	}
	c->pub.body_len = req->body ? req->body_len : 0;
	c->pub.timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 10000;
	c->pub.max_response = req->max_response > 0 ? req->max_response :
	    1024 * 1024;
	c->cb = cb;
	c->arg = arg;
	c->owner = kit_who();
	c->deadline = kit_cur->mono + c->pub.timeout_ms;
	return 0;
}

int
kit_httpc_request(const struct sales_httpc_request *req, sales_httpc_cb cb,
    void *arg)
{
	return kit_call_add(NULL, req, cb, arg);
}

int
kit_httpc_call(struct sales_module *self,
    const struct sales_httpc_request *req, sales_httpc_cb cb, void *arg)
{
	return kit_call_add(self ? self->name : NULL, req, cb, arg);
}

static int
kit_is_call(const void *elem, const void *call)
{
	return elem == call;
}

/* Takes c off the pending list, then runs its callback once. */
static void
kit_call_end(struct kit_call *c, long status, const char *body, size_t len,
    const char *err)
{
	struct sales_module *prev;
	size_t i, k;

	for (i = k = 0; i < kit_cur->calls.n; i++)
		if (kit_cur->calls.v[i] != c)
			kit_cur->calls.v[k++] = kit_cur->calls.v[i];
	kit_cur->calls.n = k;
	prev = kit_enter(c->owner);
	c->cb(status, body, len, err, c->arg);
	kit_leave(prev);
	kit_call_free(c);
}

static struct kit_call *
kit_call_find(const struct sales_kit_call *call)
{
	if (call == NULL || kit_count(&kit_cur->calls, kit_is_call,
	    call) == 0) {
		core_log("kit", SALES_LOG_ERROR, "not a pending upstream call "
		    "(answered already?)");
		return NULL;
	}
	return (struct kit_call *)call;
}

size_t
sales_kit_calls(struct sales_kit *kit)
{
	return kit->calls.n;
}

const struct sales_kit_call *
sales_kit_call(struct sales_kit *kit, long i)
{
	return kit_pick(&kit->calls, i, NULL, NULL);
}

const char *
sales_kit_call_header(const struct sales_kit_call *call, const char *name)
{
	const struct kit_call *c = (const struct kit_call *)call;
	size_t i, n = strlen(name);
	const char *v;

	for (i = 0; c->headers[i] != NULL; i++) {
		if (strncasecmp(c->headers[i], name, n) != 0 ||
		    c->headers[i][n] != ':')
			continue;
		for (v = c->headers[i] + n + 1; *v == ' '; v++)
			;
		return v;
	}
	return NULL;
}

int
sales_kit_answer(struct sales_kit *kit, const struct sales_kit_call *call,
    long status, const char *body)
{
	struct kit_call *c;
	size_t len;

	(void)kit;
	if ((c = kit_call_find(call)) == NULL)
		return -1;
	if (body == NULL)
		body = "";
	len = strlen(body);
	if (len > c->pub.max_response)
		kit_call_end(c, 0, "", 0, "response too large");
	else
		kit_call_end(c, status, body, len, NULL);
	return 0;
}

int
sales_kit_fail(struct sales_kit *kit, const struct sales_kit_call *call,
    const char *err)
{
	struct kit_call *c;

	(void)kit;
	if ((c = kit_call_find(call)) == NULL)
		return -1;
	kit_call_end(c, 0, "", 0, err ? err : "connection refused");
	return 0;
}

int64_t
kit_httpc_next(void)
{
	struct kit_call *c;
	int64_t next = INT64_MAX;
	size_t i;

	for (i = 0; i < kit_cur->calls.n; i++) {
		c = kit_cur->calls.v[i];
		if (c->deadline < next)
			next = c->deadline;
	}
	return next;
}

int
kit_httpc_expire(void)
{
	struct kit_call *c;
	size_t i;

	for (i = 0; i < kit_cur->calls.n; i++) {
		c = kit_cur->calls.v[i];
		if (c->deadline <= kit_cur->mono) {
			kit_call_end(c, 0, "", 0, "timeout");
			return 1;
		}
	}
	return 0;
}

void
kit_httpc_free(void)
{
	size_t i;

	/* A callback that calls again is answered "shutdown" too, once. */
	for (i = 0; kit_cur->calls.n > 0; i++) {
		if (i == 10000) {
			core_log("kit", SALES_LOG_ERROR, "upstream calls keep "
			    "coming after \"shutdown\"");
			while (kit_cur->calls.n > 0)
				kit_call_free(kit_cur->calls.v[
				    --kit_cur->calls.n]);
			break;
		}
		kit_call_end(kit_cur->calls.v[0], 0, "", 0, "shutdown");
	}
	free(kit_cur->calls.v);
	memset(&kit_cur->calls, 0, sizeof(kit_cur->calls));
}
