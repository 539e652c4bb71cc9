/*
 * upstream.c - one value fetched over HTTP for many callers: kept for a
 * TTL (a shorter one after a failure), fetched by one request at a time
 * however many callers wait on it, each request bounded by a timeout.
 * The contract is <sales/upstream.h>.
 *
 * Everything goes through the struct sales_core given at creation
 * (httpc_call, mono_ms, buf_*, log), never the core's internals, so that
 * the same file runs on a fake table.  It knows nothing of what is
 * fetched: the module's request and parse callbacks do.
 *
 * Callbacks may call back in (a done callback asking again, a parse
 * invalidating): values that an answer in progress still shows are
 * freed only when the outermost callback has returned, and a free while
 * callbacks run or a request is in flight waits for them.
 */
#include <stdlib.h>
#include <string.h>

#include "upstream.h"

#define UPSTREAM_MAX_WAITERS	10000

struct upstream_waiter {
	sales_upstream_done_cb	 done;
	void			*arg;
	struct upstream_waiter	*next;
};

/* A value replaced while callbacks still show it. */
struct upstream_grave {
	void			*value;
	struct upstream_grave	*next;
};

struct sales_upstream {
	const struct sales_core		*core;
	struct sales_module		*self;
	struct sales_upstream_opts	 opts;	/* name is ours (strdup) */

	int				 have;	/* an outcome is kept */
	int				 failed;
	int64_t				 at_ms;
	void				*value;
	struct sales_buf		 error;	/* why, when failed */

	int				 in_flight;
	struct upstream_waiter		*head, *tail;
	size_t				 nwaiters;

	int				 busy;	/* callbacks running */
	int				 dying;	/* free once idle */
	struct upstream_grave		*graves;
};

static void
upstream_free_value(struct sales_upstream *up, void *value)
{
	if (value == NULL)
		return;
	if (up->opts.free_value != NULL)
		up->opts.free_value(value);
	else
		free(value);
}

/* Frees value now, or when no callback can still be showing it. */
static void
upstream_bury(struct sales_upstream *up, void *value)
{
	struct upstream_grave *g;

	if (value == NULL)
		return;
	if (up->busy == 0 || (g = malloc(sizeof(*g))) == NULL) {
		/* Without memory for a grave, leaking beats a dangling value. */
		if (up->busy == 0)
			upstream_free_value(up, value);
		return;
	}
	g->value = value;
	g->next = up->graves;
	up->graves = g;
}

static void
upstream_destroy(struct sales_upstream *up)
{
	struct upstream_waiter *w;

	while ((w = up->head) != NULL) {
		up->head = w->next;
		free(w);
	}
	upstream_free_value(up, up->value);
	up->core->buf_free(&up->error);
	free((char *)up->opts.name);
	free(up);
}

static void
upstream_enter(struct sales_upstream *up)
{
	up->busy++;
}

/* Leaves a callback section; the last one out cleans up. */
static void
upstream_leave(struct sales_upstream *up)
{
	struct upstream_grave *g;

	if (--up->busy > 0)
		return;
	while ((g = up->graves) != NULL) {
		up->graves = g->next;
		upstream_free_value(up, g->value);
		free(g);
	}
	if (up->dying && !up->in_flight)
		upstream_destroy(up);
}

static void
upstream_result(const struct sales_upstream *up,
    struct sales_upstream_result *r)
{
	memset(r, 0, sizeof(*r));
	r->value = up->value;
	r->error = NULL;
	if (up->have && up->failed)
		r->error = up->error.data != NULL ? up->error.data : "failed";
	r->at_ms = up->have ? up->at_ms : 0;
}

static int
upstream_fresh(const struct sales_upstream *up)
{
	long ttl;

	if (!up->have)
		return 0;
	ttl = up->failed ? up->opts.error_ttl_ms : up->opts.ttl_ms;
	return up->core->mono_ms() - up->at_ms < ttl;
}

/*
 * Answers every caller waiting on the fetch that just ended with r.  The
 * list is taken first, so that a caller asking again from its callback
 * joins the next fetch, not this one.
 */
static void
upstream_answer(struct sales_upstream *up,
    const struct sales_upstream_result *r, int update)
{
	struct upstream_waiter *w, *list = up->head;

	up->head = up->tail = NULL;
	up->nwaiters = 0;
	if (update && up->opts.update != NULL && !up->dying)
		up->opts.update(r, up->opts.arg);
	while ((w = list) != NULL) {
		list = w->next;
		if (!up->dying)
			w->done(r, w->arg);
		free(w);
	}
}

/* A fetch ended with an answer, or with none: parse judges, all hear. */
static void
upstream_end(struct sales_upstream *up, long status, const char *body,
    size_t len, const char *err)
{
	const struct sales_core *c = up->core;
	struct sales_upstream_result r;
	struct sales_buf why = {0};
	void *value = NULL;
	char *error = NULL;
	int rc;

	upstream_enter(up);
	if (up->dying) {
		up->in_flight = 0;
		upstream_leave(up);
		return;
	}
	/* Still in flight for parse: a caller it makes joins this fetch. */
	rc = up->opts.parse(status, body != NULL ? body : "", len, err,
	    &value, &why, up->opts.arg);
	if (rc == 0 && value == NULL) {
		rc = -1;
		why.len = 0;
		c->buf_printf(&why, "no value");
	}
	if (rc != 0 && why.len == 0)
		c->buf_printf(&why, "failed");
	if (value != NULL) {
		upstream_bury(up, up->value);
		up->value = value;
	}
	up->in_flight = 0;
	up->have = 1;
	up->failed = rc != 0;
	up->at_ms = c->mono_ms();
	c->buf_free(&up->error);
	up->error = why;
	upstream_result(up, &r);
	/* Our own copy: a callback may end another fetch meanwhile. */
	if (r.error != NULL && (error = strdup(r.error)) != NULL)
		r.error = error;
	upstream_answer(up, &r, 1);
	free(error);
	upstream_leave(up);
}

static void
upstream_answered(long status, const char *body, size_t len,
    const char *err, void *arg)
{
	struct sales_upstream *up = arg;
	struct sales_upstream_result r;

	if (status != 0 || err == NULL || strcmp(err, "shutdown") != 0) {
		upstream_end(up, status, body, len, err);
		return;
	}
	/* The server stops: tell the waiters, keep nothing. */
	upstream_enter(up);
	up->in_flight = 0;
	upstream_result(up, &r);
	r.error = "shutdown";
	r.shutdown = 1;
	upstream_answer(up, &r, 0);
	upstream_leave(up);
}

static void
upstream_start(struct sales_upstream *up)
{
	const struct sales_core *c = up->core;
	struct sales_httpc_request req;
	struct sales_buf url = {0}, body = {0};
	int rc;

	if (up->in_flight || up->dying)
		return;
	up->in_flight = 1;
	memset(&req, 0, sizeof(req));
	upstream_enter(up);
	rc = up->opts.request(&req, &url, &body, up->opts.arg);
	if (rc == 0 && !up->dying) {
		req.timeout_ms = up->opts.timeout_ms;
		rc = c->httpc_call(up->self, &req, upstream_answered, up);
	} else
		rc = -1;
	c->buf_free(&url);
	c->buf_free(&body);
	if (rc != 0)
		upstream_end(up, 0, "", 0, "request could not start");
	upstream_leave(up);
}

int
core_upstream_configure(struct sales_upstream *up,
    const struct sales_upstream_opts *opts)
{
	char *name;

	if (opts == NULL || opts->request == NULL || opts->parse == NULL ||
	    opts->ttl_ms < 0 || opts->error_ttl_ms < 0 ||
	    opts->timeout_ms < 0) {
		up->core->log(up->self, SALES_LOG_ERROR, "upstream \"%s\": "
		    "needs request and parse callbacks and TTLs >= 0",
		    opts && opts->name ? opts->name : "?");
		return -1;
	}
	if ((name = strdup(opts->name ? opts->name : "upstream")) == NULL) {
		up->core->log(up->self, SALES_LOG_ERROR, "upstream: out of "
		    "memory");
		return -1;
	}
	free((char *)up->opts.name);
	up->opts = *opts;
	up->opts.name = name;
	if (up->opts.max_waiters == 0)
		up->opts.max_waiters = UPSTREAM_MAX_WAITERS;
	return 0;
}

struct sales_upstream *
core_upstream_new(const struct sales_core *core, struct sales_module *self,
    const struct sales_upstream_opts *opts)
{
	struct sales_upstream *up;

	if ((up = calloc(1, sizeof(*up))) == NULL) {
		core->log(self, SALES_LOG_ERROR, "upstream: out of memory");
		return NULL;
	}
	up->core = core;
	up->self = self;
	if (core_upstream_configure(up, opts) == -1) {
		free(up);
		return NULL;
	}
	return up;
}

int
core_upstream_get(struct sales_upstream *up, sales_upstream_done_cb done,
    void *arg)
{
	struct sales_upstream_result r;
	struct upstream_waiter *w;
	char *error;

	if (up == NULL || up->dying || done == NULL)
		return -1;
	if (upstream_fresh(up)) {
		upstream_enter(up);
		upstream_result(up, &r);
		error = NULL;
		if (r.error != NULL && (error = strdup(r.error)) != NULL)
			r.error = error;
		done(&r, arg);
		free(error);
		upstream_leave(up);
		return 0;
	}
	if (up->nwaiters >= up->opts.max_waiters ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->done = done;
	w->arg = arg;
	if (up->tail != NULL)
		up->tail->next = w;
	else
		up->head = w;
	up->tail = w;
	up->nwaiters++;
	upstream_start(up);
	return 0;
}

void
core_upstream_refresh(struct sales_upstream *up)
{
	if (up != NULL)
		upstream_start(up);
}

void
core_upstream_invalidate(struct sales_upstream *up)
{
	if (up == NULL)
		return;
	upstream_bury(up, up->value);
	up->value = NULL;
	up->have = 0;
	up->failed = 0;
	up->at_ms = 0;
	up->error.len = 0;
	if (up->error.data != NULL)
		up->error.data[0] = '\0';
}

int
core_upstream_peek(const struct sales_upstream *up,
    struct sales_upstream_result *result)
{
	if (up == NULL || !up->have)
		return -1;
	upstream_result(up, result);
	return 0;
}

void
core_upstream_free(struct sales_upstream *up)
{
	if (up == NULL)
		return;
	up->dying = 1;
	if (up->busy == 0 && !up->in_flight)
		upstream_destroy(up);
}
