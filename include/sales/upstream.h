/*
 * sales/upstream.h - a cached, single-flight, timeout-bounded upstream
 * call (ABI 1.5): one value fetched over HTTP that many requests want,
 * such as the current weather or a model's recommendations.
 *
 * A module makes one struct sales_upstream per thing it fetches, in init,
 * with core->upstream_new(self, &opts), and frees it in fini with
 * core->upstream_free().  Then:
 *
 *	core->upstream_get(up, done, arg)
 *
 * calls done(result, arg) exactly once: at once, inside the call, when
 * the last outcome is still fresh; otherwise when the fetch under way
 * ends, or the one this call starts.  Every caller waiting on one fetch
 * gets the same outcome (single flight): the upstream sees one request
 * however many callers ask at the same time.
 *
 * A fetch is opts.request (make the request), one core->httpc_call
 * bounded by opts.timeout_ms, then opts.parse (turn the answer into the
 * module's value, or say why not).  It always ends, in one call of
 * parse: on success, an HTTP error, a timeout, a connection error, or
 * when nothing could be sent.  The outcome is then kept:
 *
 *	good (parse returned 0)		fresh for ttl_ms
 *	failed (parse returned -1)	fresh for error_ttl_ms, so that a
 *					broken upstream is not hammered
 *
 * A failed fetch that yields no value keeps the last good one (stale
 * if error): result->value is the old value with result->error set.
 * At shutdown a fetch in flight ends without parse: its waiters get
 * result->shutdown set and the value as it was; nothing is cached.
 *
 * Nothing here blocks.
 */
#ifndef SALES_UPSTREAM_H
#define SALES_UPSTREAM_H

#include <sales/types.h>
#include <sales/httpc.h>

struct sales_upstream;		/* opaque; the core's */

/* What a caller of upstream_get (and the update callback) is told. */
struct sales_upstream_result {
	/*
	 * The value of the last good fetch, or the stand-in a failed one
	 * gave (see parse), or NULL when there is none.  Owned by the
	 * upstream: valid during the callback only; copy what you keep.
	 */
	void		*value;
	/*
	 * NULL after a good fetch; else why the last fetch failed, as
	 * parse wrote it (or "shutdown").  Valid during the callback only.
	 */
	const char	*error;
	int64_t		 at_ms;		/* mono_ms when the outcome came; 0: none */
	int		 shutdown;	/* the server stops: nothing was fetched */
};

/*
 * Makes the request of a fetch: fill *req.  url and body are empty
 * buffers of the upstream's, to build the URL and body in; req may
 * point into them, or into memory of the module's that outlives the
 * call (headers).  The upstream sets req->timeout_ms from opts and frees
 * url and body once the request has started (the HTTP client copies
 * what it needs).  Return 0 to send it, -1 to send nothing: the fetch
 * then ends at once, parse seeing status 0 and err "request could not
 * start" (a module that answers locally, say without an api key, knows
 * why and says so in parse).
 */
typedef int (*sales_upstream_request_cb)(struct sales_httpc_request *req,
    struct sales_buf *url, struct sales_buf *body, void *arg);

/*
 * Turns the upstream's answer into the module's value.  status, body,
 * len and err are those of sales_httpc_cb (status 0: no answer, err
 * says why: "timeout", "could not connect", ...).  Return 0 with *value
 * set: a good outcome (0 with *value NULL counts as failed, "no
 * value").  Return -1 with why filled (one line, "failed" if left empty,
 * for clients and logs): a failed one; *value may still be set to a
 * stand-in (a fallback answer) that callers get instead of the old
 * value.  The upstream owns *value from then on and frees it with
 * opts.free_value when a newer one replaces it.
 */
typedef int (*sales_upstream_parse_cb)(long status, const char *body,
    size_t len, const char *err, void **value, struct sales_buf *why,
    void *arg);

/* The answer to one upstream_get; arg is the one given to it. */
typedef void (*sales_upstream_done_cb)(
    const struct sales_upstream_result *result, void *arg);

struct sales_upstream_opts {
	const char	*name;		/* for the log: "openweather" */
	long		 ttl_ms;	/* a good outcome is reused; 0: never */
	long		 error_ttl_ms;	/* a failed one is; 0: never */
	long		 timeout_ms;	/* each request, whole; 0: 10000 */
	size_t		 max_waiters;	/* callers on one fetch; 0: 10000 */
	sales_upstream_request_cb request;	/* required */
	sales_upstream_parse_cb	 parse;		/* required */
	/*
	 * Optional: called once at the end of every fetch (those that
	 * upstream_refresh started included), before the waiters are
	 * answered, with arg below.  Not called at shutdown.
	 */
	sales_upstream_done_cb	 update;
	void		(*free_value)(void *value);	/* NULL: free() */
	void		*arg;		/* passed to request, parse, update */
};

/*
 * The members of struct sales_core (<sales/module.h>), ABI 1.5:
 *
 * upstream_new(self, opts): a new upstream with no outcome yet; opts is
 *	copied (name included).  NULL, logged, when opts lacks request or
 *	parse, or memory runs out.  Does no I/O.
 * upstream_configure(up, opts): replaces the settings (a reload); the
 *	outcome kept is judged by the new TTLs from now on, a fetch in
 *	flight ends as it began.  0, or -1 (logged) as upstream_new.
 * upstream_get(up, done, arg): as above.  0 when done was or will be
 *	called once; -1 when it will not be (max_waiters reached, no
 *	memory, up is being freed): the caller answers by itself, perhaps
 *	from upstream_peek.  May call done, request, parse and update
 *	before it returns.
 * upstream_refresh(up): starts a fetch now unless one is under way,
 *	without waiting for it (a refresh timer, a retry).  The outcome
 *	kept still answers upstream_get meanwhile, while fresh.
 * upstream_invalidate(up): forgets the outcome and its value, so that
 *	the next upstream_get fetches (the city changed).  A fetch in
 *	flight is not stopped: its outcome is kept when it ends.
 * upstream_peek(up, result): fills *result with the outcome kept, fresh
 *	or not, fetching nothing.  0, or -1 when there is none.
 * upstream_free(up): frees it and the value.  Callers still waiting are
 *	dropped without a call (at shutdown the core answers their
 *	requests).  With a fetch in flight, the memory goes when it ends.
 *	NULL is ignored.  Call it from fini, or any time after init.
 */

#endif /* SALES_UPSTREAM_H */
