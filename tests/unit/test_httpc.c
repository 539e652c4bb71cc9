/*
 * test_httpc.c - core/httpc.c against a fake upstream: an evhttp server
 * on 127.0.0.1 (port 0) in the same loop.  GET and POST round trips with
 * headers, a non-200 status passed through, connection refused, a
 * timeout on a handler that never answers, oversized responses (with and
 * without Content-Length), bad requests refused, shutdown failing
 * what is in flight, and the duration histograms by caller and outcome.  Every callback must run exactly once.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "buf.h"
#include "core.h"
#include "httpc.h"
#include "unit_http.h"

#define BIG	100000

static int		 port;
static int		 hung;		/* requests the fake never answers */

struct outcome {
	int	 calls;
	long	 status;
	char	*body;
	size_t	 len;
	char	 err[256];
};

static void
fake(struct evhttp_request *req, void *arg)
{
	const char *path = evhttp_request_get_uri(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *out = evbuffer_new();
	const char *h;
	char *big;

	(void)arg;
	if (strcmp(path, "/get") == 0) {
		h = evhttp_find_header(in, "X-Test");
		evbuffer_add_printf(out, "%s x-test=%s",
		    evhttp_request_get_command(req) == EVHTTP_REQ_GET ?
		    "GET" : "other", h ? h : "none");
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain");
		evhttp_send_reply(req, 200, "OK", out);
	} else if (strcmp(path, "/post") == 0) {
		h = evhttp_find_header(in, "Content-Type");
		evbuffer_add_printf(out, "%s %s ",
		    evhttp_request_get_command(req) == EVHTTP_REQ_POST ?
		    "POST" : "other", h ? h : "none");
		evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
		evhttp_send_reply(req, 201, "Created", out);
	} else if (strcmp(path, "/status") == 0) {
		evbuffer_add_printf(out, "missing");
		evhttp_send_reply(req, 404, "Not Found", out);
	} else if (strcmp(path, "/hang") == 0) {
		hung++;		/* never answered; freed with the connection */
	} else if (strcmp(path, "/big") == 0 ||
	    strcmp(path, "/chunked") == 0) {
		assert_non_null(big = malloc(BIG));
		memset(big, 'x', BIG);
		evbuffer_add(out, big, BIG);
		free(big);
		if (strcmp(path, "/big") == 0)
			evhttp_send_reply(req, 200, "OK", out);
		else {
			/* No Content-Length: only the byte count can stop it. */
			evhttp_send_reply_start(req, 200, "OK");
			evhttp_send_reply_chunk(req, out);
			evhttp_send_reply_end(req);
		}
	} else
		evhttp_send_reply(req, 500, "Unexpected", NULL);
	evbuffer_free(out);
}

static void
on_done(long status, const char *body, size_t len, const char *err,
    void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->status = status;
	assert_non_null(body);
	assert_int_equal(body[len], '\0');
	free(o->body);
	o->body = malloc(len + 1);
	memcpy(o->body, body, len + 1);
	o->len = len;
	if (err != NULL)
		snprintf(o->err, sizeof(o->err), "%s", err);
	else
		o->err[0] = '\0';
}

static struct outcome	*waiting[8];
static int		 nwaiting;

static int
all_done(void)
{
	int i;

	for (i = 0; i < nwaiting; i++)
		if (waiting[i]->calls == 0)
			return 0;
	return 1;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (all_done())
		event_base_loopbreak(core_base);
}

/* Runs the loop until every outcome in waiting[] is in, at most 10 s. */
static void
run(void)
{
	struct timeval tv = { 0, 5000 };
	struct event *ev;
	int64_t start = core_mono_ms();

	ev = event_new(core_base, -1, EV_PERSIST, tick, NULL);
	event_add(ev, &tv);
	while (!all_done() && core_mono_ms() - start < 10000)
		event_base_loop(core_base, EVLOOP_ONCE);
	event_free(ev);
	assert_true(all_done());
	nwaiting = 0;
}

static void
expect(struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	waiting[nwaiting++] = o;
}

static void
url(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "http://127.0.0.1:%d%s", port, path);
}

static int
setup(void **state)
{
	(void)state;
	hung = 0;
	nwaiting = 0;
	if (unit_http_setup(fake, &port) == -1)
		return -1;
	evhttp_set_allowed_methods(unit_http_server,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return unit_http_teardown();
}

static void
test_get(void **state)
{
	struct outcome o;
	const char *headers[] = { "X-Test: hello there", "Accept: */*", NULL };
	struct sales_httpc_request req = { 0 };
	char u[128];
	uint64_t before = core_httpc_requests();

	(void)state;
	url(u, sizeof(u), "/get");
	req.url = u;
	req.headers = headers;
	expect(&o);
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	assert_int_equal(core_httpc_requests(), before + 1);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 200);
	assert_string_equal(o.err, "");
	assert_string_equal(o.body, "GET x-test=hello there");
	free(o.body);
}

/* The body is copied: the caller's buffer is gone before it is sent. */
static void
test_post(void **state)
{
	struct outcome o;
	const char *headers[] = { "Content-Type: application/json", NULL };
	struct sales_httpc_request req = { 0 };
	char u[128], *body;

	(void)state;
	url(u, sizeof(u), "/post");
	body = strdup("{\"a\":1}");
	req.method = "POST";
	req.url = u;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	expect(&o);
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	memset(body, '!', strlen(body));
	free(body);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 201);
	assert_string_equal(o.body, "POST application/json {\"a\":1}");
	free(o.body);
}

/* Statuses are passed through; the error is only for no response. */
static void
test_status(void **state)
{
	struct outcome o;
	struct sales_httpc_request req = { 0 };
	char u[128];

	(void)state;
	url(u, sizeof(u), "/status");
	req.url = u;
	expect(&o);
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 404);
	assert_string_equal(o.err, "");
	assert_string_equal(o.body, "missing");
	free(o.body);
}

static void
test_refused(void **state)
{
	struct outcome o;
	struct sales_httpc_request req = { 0 };
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	char u[128];
	int fd, closed_port;

	(void)state;
	/* A port that was just free: bound, never listened on, closed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	closed_port = ntohs(sin.sin_port);
	close(fd);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/", closed_port);
	req.url = u;
	req.timeout_ms = 5000;
	expect(&o);
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 0);
	assert_true(o.err[0] != '\0');
	/* A class, not curl's text with our addresses and ports in it. */
	assert_string_equal(o.err, "could not connect");
	assert_int_equal(o.len, 0);
	free(o.body);
}

/* A handler that never answers: timeout, quickly, without blocking. */
static void
test_timeout(void **state)
{
	struct outcome o, p;
	struct sales_httpc_request req = { 0 }, ok = { 0 };
	char u[128], v[128];
	int64_t start;

	(void)state;
	url(u, sizeof(u), "/hang");
	url(v, sizeof(v), "/get");
	req.url = u;
	req.timeout_ms = 200;
	ok.url = v;
	expect(&o);
	expect(&p);
	start = core_mono_ms();
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	assert_int_equal(core_httpc_request(&ok, on_done, &p), 0);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.err, "timeout");
	assert_true(core_mono_ms() - start < 3000);
	assert_int_equal(hung, 1);
	/* The other request went through meanwhile. */
	assert_int_equal(p.status, 200);
	free(o.body);
	free(p.body);
}

static void
test_too_large(void **state)
{
	struct outcome a, b, c;
	struct sales_httpc_request r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	char u1[128], u2[128];

	(void)state;
	url(u1, sizeof(u1), "/big");
	url(u2, sizeof(u2), "/chunked");
	r1.url = u1;
	r1.max_response = 1000;
	r2.url = u2;
	r2.max_response = 1000;
	r3.url = u2;
	r3.max_response = BIG;		/* exactly fits */
	expect(&a);
	expect(&b);
	expect(&c);
	assert_int_equal(core_httpc_request(&r1, on_done, &a), 0);
	assert_int_equal(core_httpc_request(&r2, on_done, &b), 0);
	assert_int_equal(core_httpc_request(&r3, on_done, &c), 0);
	run();
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, 0);
	assert_string_equal(a.err, "response too large");
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, 0);
	assert_string_equal(b.err, "response too large");
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.status, 200);
	assert_int_equal(c.len, BIG);
	free(a.body);
	free(b.body);
	free(c.body);
}

/* Requests that cannot start are refused; odd URLs fail via the cb. */
static void
test_bad_requests(void **state)
{
	struct outcome o;
	const char *evil[] = { "X-A: b\r\nX-Injected: 1", NULL };
	const char *nocolon[] = { "garbage", NULL };
	struct sales_httpc_request req = { 0 };
	char u[128];

	(void)state;
	url(u, sizeof(u), "/get");
	assert_int_equal(core_httpc_request(&req, on_done, &o), -1);
	req.url = u;
	req.method = "DELETE";
	assert_int_equal(core_httpc_request(&req, on_done, &o), -1);
	req.method = "GET";
	req.headers = evil;
	assert_int_equal(core_httpc_request(&req, on_done, &o), -1);
	req.headers = nocolon;
	assert_int_equal(core_httpc_request(&req, on_done, &o), -1);
	req.headers = NULL;
	req.url = "file:///etc/passwd";
	expect(&o);
	assert_int_equal(core_httpc_request(&req, on_done, &o), 0);
	run();
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, 0);
	assert_true(o.err[0] != '\0');
	print_message("file url: %s\n", o.err);
	free(o.body);
}

/* Shutdown fails what is in flight, once each, and refuses new work. */
static void
test_shutdown(void **state)
{
	struct outcome a, b;
	struct sales_httpc_request req = { 0 };
	struct event *ev;
	char u[128];
	int64_t start;

	(void)state;
	url(u, sizeof(u), "/hang");
	req.url = u;
	req.timeout_ms = 5000;
	expect(&a);
	expect(&b);
	assert_int_equal(core_httpc_request(&req, on_done, &a), 0);
	assert_int_equal(core_httpc_request(&req, on_done, &b), 0);
	assert_non_null(ev = unit_http_stop_after(100));
	start = core_mono_ms();
	run();
	event_free(ev);
	assert_true(core_mono_ms() - start < 3000);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.err, "shutdown");
	assert_int_equal(a.status, 0);
	assert_int_equal(b.calls, 1);
	assert_string_equal(b.err, "shutdown");
	assert_int_equal(core_httpc_request(&req, on_done, &a), -1);
	assert_int_equal(a.calls, 1);
	free(a.body);
	free(b.body);
}

static int
has(const struct sales_buf *b, const char *line)
{
	return b->data != NULL && strstr(b->data, line) != NULL;
}

/* Durations by caller and outcome; calls without a caller are "unknown". */
static void
test_metrics_by_owner(void **state)
{
	struct outcome o, p, q, r;
	struct sales_httpc_request ok = { 0 }, st = { 0 }, hang = { 0 };
	struct sales_buf b = { 0 };
	char u[128], v[128], w[128];

	(void)state;
	url(u, sizeof(u), "/get");
	url(v, sizeof(v), "/status");
	url(w, sizeof(w), "/hang");
	ok.url = u;
	st.url = v;
	hang.url = w;
	hang.timeout_ms = 100;
	expect(&o);
	expect(&p);
	expect(&q);
	expect(&r);
	assert_int_equal(core_httpc_call("unit_mod", &ok, on_done, &o), 0);
	assert_int_equal(core_httpc_call("unit_mod", &st, on_done, &p), 0);
	assert_int_equal(core_httpc_call("unit_mod", &hang, on_done, &q), 0);
	assert_int_equal(core_httpc_request(&ok, on_done, &r), 0);
	run();
	core_httpc_metrics(&b);
	assert_true(has(&b, "# TYPE salesd_upstream_duration_seconds "
	    "histogram\n"));
	assert_true(has(&b, "\nsalesd_upstream_duration_seconds_count{"
	    "module=\"unit_mod\",outcome=\"ok\"} 1\n"));
	assert_true(has(&b, "\nsalesd_upstream_duration_seconds_count{"
	    "module=\"unit_mod\",outcome=\"http_error\"} 1\n"));
	assert_true(has(&b, "\nsalesd_upstream_duration_seconds_count{"
	    "module=\"unit_mod\",outcome=\"timeout\"} 1\n"));
	assert_true(has(&b, "\nsalesd_upstream_duration_seconds_count{"
	    "module=\"unit_mod\",outcome=\"error\"} 0\n"));
	assert_true(has(&b, "\nsalesd_upstream_duration_seconds_bucket{"
	    "module=\"unknown\",outcome=\"ok\",le=\"+Inf\"} "));
	core_buf_free(&b);
	free(o.body);
	free(p.body);
	free(q.body);
	free(r.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_shutdown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_metrics_by_owner, setup,
		    teardown),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
