/*
 * test_upstream.c - core/upstream.c through the service table (the
 * upstream_* members of core_api), against a fake upstream: an evhttp
 * server on 127.0.0.1 in the same loop (unit_http.h).
 * Single flight (many callers, one request, one outcome for all), the
 * TTL and its expiry, the error TTL keeping the last good value, a
 * timeout, a request that cannot be sent, refresh, invalidate and peek,
 * the waiter limit, a caller asking again from its callback, shutdown,
 * and a free while a request is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "core.h"
#include "httpc.h"
#include "unit_http.h"

static const struct sales_core *core = &core_api;

static int		 port;
static int		 hits;		/* requests the fake saw */
static int		 fail_status;	/* answer this instead, when not 0 */
static const char	*path;		/* what the request asks for */
static int		 send_nothing;	/* the request callback refuses */
static int		 parses, updates;
static long		 parsed_status;
static char		 parsed_err[64];

static void
fake(struct evhttp_request *req, void *arg)
{
	struct evbuffer *out;

	(void)arg;
	if (strcmp(evhttp_request_get_uri(req), "/hang") == 0)
		return;		/* never answered; freed with the connection */
	hits++;
	out = evbuffer_new();
	if (fail_status != 0) {
		evbuffer_add_printf(out, "{}");
		evhttp_send_reply(req, fail_status, "Failed", out);
	} else {
		evbuffer_add_printf(out, "{\"n\":%d}", hits);
		evhttp_send_reply(req, 200, "OK", out);
	}
	evbuffer_free(out);
}

static int
request(struct sales_httpc_request *req, struct sales_buf *url,
    struct sales_buf *body, void *arg)
{
	(void)body;
	assert_ptr_equal(arg, &hits);
	if (send_nothing)
		return -1;
	core->buf_printf(url, "http://127.0.0.1:%d%s", port, path);
	req->url = url->data;
	return 0;
}

/* The value is the fake's "n": which of its answers this is. */
static int
parse(long status, const char *body, size_t len, const char *err,
    void **value, struct sales_buf *why, void *arg)
{
	struct sales_json *j;
	long long n;
	int *v;

	assert_ptr_equal(arg, &hits);
	parses++;
	parsed_status = status;
	snprintf(parsed_err, sizeof(parsed_err), "%s", err ? err : "");
	if (status != 200) {
		core->buf_printf(why, "%s %ld", err ? err : "HTTP", status);
		return -1;
	}
	assert_non_null(j = core->json_parse(body, len));
	assert_int_equal(core->json_int(j, core->json_get(j, 0, "n"), &n), 0);
	core->json_free(j);
	assert_non_null(v = malloc(sizeof(*v)));
	*v = (int)n;
	*value = v;
	return 0;
}

static void
update(const struct sales_upstream_result *r, void *arg)
{
	(void)r;
	assert_ptr_equal(arg, &hits);
	updates++;
}

struct answer {
	int	 calls;
	int	 n;		/* the value's, or 0 when none */
	char	 error[64];	/* "" when none */
	int	 shutdown;
};

static void
done(const struct sales_upstream_result *r, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->n = r->value != NULL ? *(const int *)r->value : 0;
	snprintf(a->error, sizeof(a->error), "%s", r->error ? r->error : "");
	a->shutdown = r->shutdown;
	if (r->error == NULL)
		assert_true(r->at_ms > 0);
}

static struct sales_upstream *
make(long ttl_ms, long error_ttl_ms, long timeout_ms)
{
	struct sales_upstream_opts o = { 0 };
	struct sales_upstream *up;

	o.name = "fake";
	o.ttl_ms = ttl_ms;
	o.error_ttl_ms = error_ttl_ms;
	o.timeout_ms = timeout_ms;
	o.request = request;
	o.parse = parse;
	o.update = update;
	o.arg = &hits;
	assert_non_null(up = core->upstream_new(NULL, &o));
	return up;
}

static void
nothing(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until cond() holds, at most 10 s. */
static void
run_until(int (*cond)(void *), void *arg)
{
	int64_t start = core_mono_ms();
	struct timeval tv = { 0, 5000 };
	struct event *tick;

	/* A tick, so that EVLOOP_ONCE returns even with nothing to do. */
	tick = event_new(core_base, -1, EV_PERSIST, nothing, NULL);
	event_add(tick, &tv);
	while (!cond(arg) && core_mono_ms() - start < 10000)
		event_base_loop(core_base, EVLOOP_ONCE);
	event_free(tick);
	assert_true(cond(arg));
}

static int
answered(void *arg)
{
	struct answer *a = arg;

	return a->calls > 0;
}

static int
time_reached(void *arg)
{
	return core_mono_ms() >= *(int64_t *)arg;
}

static void
run_until_ms(int64_t ms)
{
	run_until(time_reached, &ms);
}

static int
setup(void **state)
{
	(void)state;
	hits = fail_status = send_nothing = parses = updates = 0;
	path = "/value";
	return unit_http_setup(fake, &port);
}

static int
teardown(void **state)
{
	(void)state;
	return unit_http_teardown();
}

/* Three callers, one request, one outcome; then the cache, then expiry. */
static void
test_single_flight_and_ttl(void **state)
{
	struct sales_upstream *up = make(300, 100, 5000);
	struct answer a[3] = { 0 }, b = { 0 }, c = { 0 };
	int64_t at;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_equal(core->upstream_get(up, done, &a[i]), 0);
	assert_int_equal(a[0].calls, 0);	/* nothing answers in get */
	run_until(answered, &a[2]);
	assert_int_equal(hits, 1);
	assert_int_equal(parses, 1);
	assert_int_equal(updates, 1);
	for (i = 0; i < 3; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].n, 1);
		assert_string_equal(a[i].error, "");
	}
	/* Fresh: answered inside the call, from the cache. */
	at = core_mono_ms();
	assert_int_equal(core->upstream_get(up, done, &b), 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.n, 1);
	assert_int_equal(hits, 1);
	/* Stale after ttl_ms: the next caller fetches again. */
	run_until_ms(at + 350);
	assert_int_equal(core->upstream_get(up, done, &c), 0);
	assert_int_equal(c.calls, 0);
	run_until(answered, &c);
	assert_int_equal(c.n, 2);
	assert_int_equal(hits, 2);
	core->upstream_free(up);
}

/* A failure is kept error_ttl_ms, with the last good value beside it. */
static void
test_error_ttl_keeps_value(void **state)
{
	struct sales_upstream *up = make(50, 300, 5000);
	struct answer a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	int64_t at;

	(void)state;
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	run_until(answered, &a);
	assert_int_equal(a.n, 1);
	run_until_ms(core_mono_ms() + 80);
	fail_status = 500;
	assert_int_equal(core->upstream_get(up, done, &b), 0);
	run_until(answered, &b);
	at = core_mono_ms();
	assert_int_equal(hits, 2);
	assert_string_equal(b.error, "HTTP 500");
	assert_int_equal(b.n, 1);		/* stale if error */
	/* No storm: the failure answers at once while it is fresh. */
	assert_int_equal(core->upstream_get(up, done, &c), 0);
	assert_int_equal(c.calls, 1);
	assert_string_equal(c.error, "HTTP 500");
	assert_int_equal(hits, 2);
	/* Once it is stale, a good answer replaces it. */
	fail_status = 0;
	run_until_ms(at + 350);
	assert_int_equal(core->upstream_get(up, done, &d), 0);
	run_until(answered, &d);
	assert_int_equal(hits, 3);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.error, "");
	core->upstream_free(up);
}

/* A hung upstream ends in timeout_ms, for every waiter, as a failure. */
static void
test_timeout(void **state)
{
	struct sales_upstream *up = make(1000, 1000, 200);
	struct answer a = { 0 }, b = { 0 };
	int64_t start = core_mono_ms();

	(void)state;
	path = "/hang";
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_int_equal(core->upstream_get(up, done, &b), 0);
	run_until(answered, &b);
	assert_true(core_mono_ms() - start < 3000);
	assert_int_equal(parses, 1);
	assert_int_equal(parsed_status, 0);
	assert_string_equal(parsed_err, "timeout");
	assert_string_equal(a.error, "timeout 0");
	assert_string_equal(b.error, "timeout 0");
	assert_int_equal(a.n, 0);
	core->upstream_free(up);
}

/* Nothing sent: parse hears why at once, inside get. */
static void
test_request_not_sent(void **state)
{
	struct sales_upstream *up = make(1000, 0, 1000);
	struct answer a = { 0 }, b = { 0 };

	(void)state;
	send_nothing = 1;
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_int_equal(a.calls, 1);
	assert_string_equal(parsed_err, "request could not start");
	assert_string_equal(a.error, "request could not start 0");
	/* error_ttl_ms 0: a failure is never reused. */
	assert_int_equal(core->upstream_get(up, done, &b), 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(parses, 2);
	assert_int_equal(hits, 0);
	core->upstream_free(up);
}

static int
updated(void *arg)
{
	return updates >= *(int *)arg;
}

/* refresh fetches for nobody; update hears it; invalidate forgets. */
static void
test_refresh_invalidate_peek(void **state)
{
	struct sales_upstream *up = make(60000, 1000, 5000);
	struct sales_upstream_result r;
	struct answer a = { 0 };
	int want = 1;

	(void)state;
	assert_int_equal(core->upstream_peek(up, &r), -1);
	core->upstream_refresh(up);
	core->upstream_refresh(up);		/* one under way already */
	run_until(updated, &want);
	assert_int_equal(hits, 1);
	assert_int_equal(core->upstream_peek(up, &r), 0);
	assert_int_equal(*(int *)r.value, 1);
	assert_null(r.error);
	/* Fresh, a refresh still fetches; get answers from the cache. */
	core->upstream_refresh(up);
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.n, 1);
	want = 2;
	run_until(updated, &want);
	assert_int_equal(core->upstream_peek(up, &r), 0);
	assert_int_equal(*(int *)r.value, 2);
	core->upstream_invalidate(up);
	assert_int_equal(core->upstream_peek(up, &r), -1);
	memset(&a, 0, sizeof(a));
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_int_equal(a.calls, 0);
	run_until(answered, &a);
	assert_int_equal(a.n, 3);
	core->upstream_free(up);
}

static void
test_max_waiters_and_bad_opts(void **state)
{
	struct sales_upstream_opts o = { 0 };
	struct sales_upstream *up;
	struct answer a = { 0 }, b = { 0 }, c = { 0 };

	(void)state;
	assert_null(core->upstream_new(NULL, &o));	/* no callbacks */
	o.request = request;
	o.parse = parse;
	o.arg = &hits;
	o.max_waiters = 2;
	o.error_ttl_ms = -1;
	assert_null(core->upstream_new(NULL, &o));
	o.error_ttl_ms = 0;
	assert_non_null(up = core->upstream_new(NULL, &o));
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_int_equal(core->upstream_get(up, done, &b), 0);
	assert_int_equal(core->upstream_get(up, done, &c), -1);
	run_until(answered, &b);
	assert_int_equal(c.calls, 0);
	assert_int_equal(hits, 1);
	core->upstream_free(up);
}

static struct sales_upstream	*again_up;
static struct answer		 again_inner;

/* Asking again from the callback gets the outcome just kept. */
static void
done_again(const struct sales_upstream_result *r, void *arg)
{
	done(r, arg);
	assert_int_equal(core->upstream_get(again_up, done, &again_inner), 0);
	assert_int_equal(again_inner.calls, 1);
	/* Forgetting it here leaves r's value alive for the others. */
	core->upstream_invalidate(again_up);
}

static void
test_reentrant(void **state)
{
	struct answer a = { 0 }, b = { 0 };

	(void)state;
	again_up = make(60000, 1000, 5000);
	memset(&again_inner, 0, sizeof(again_inner));
	assert_int_equal(core->upstream_get(again_up, done_again, &a), 0);
	assert_int_equal(core->upstream_get(again_up, done, &b), 0);
	run_until(answered, &b);
	assert_int_equal(again_inner.n, 1);
	assert_int_equal(b.n, 1);
	core->upstream_free(again_up);
}

/* Shutdown answers the waiters, without parse, and keeps nothing. */
static void
test_shutdown(void **state)
{
	struct sales_upstream *up = make(60000, 1000, 20000);
	struct sales_upstream_result r;
	struct answer a = { 0 };
	struct event *ev;

	(void)state;
	path = "/hang";
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	assert_non_null(ev = unit_http_stop_after(100));
	run_until(answered, &a);
	event_free(ev);
	assert_int_equal(a.shutdown, 1);
	assert_string_equal(a.error, "shutdown");
	assert_int_equal(parses, 0);
	assert_int_equal(updates, 0);
	assert_int_equal(core->upstream_peek(up, &r), -1);
	core->upstream_free(up);
}

static int
fake_saw(void *arg)
{
	(void)arg;
	return hits == 1;
}

/* Freed with a request in flight: it goes when the request ends. */
static void
test_free_in_flight(void **state)
{
	struct sales_upstream *up = make(60000, 1000, 5000);
	struct answer a = { 0 };

	(void)state;
	assert_int_equal(core->upstream_get(up, done, &a), 0);
	core->upstream_free(up);
	run_until(fake_saw, NULL);
	/* Time for the answer to arrive; a leak shows under ASan. */
	run_until_ms(core_mono_ms() + 300);
	assert_int_equal(a.calls, 0);
	assert_int_equal(parses, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_flight_and_ttl,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_ttl_keeps_value,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_request_not_sent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refresh_invalidate_peek,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_waiters_and_bad_opts,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reentrant, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, setup,
		    teardown),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
