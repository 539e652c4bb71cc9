/*
 * fuzz_http.c - libFuzzer harness for the HTTP request path: the real
 * core/http*.c, router and core/ws.c hand-over on a real event loop.
 *
 * Each input is the byte stream one client sends on one connection
 * (pipelined requests, chunked bodies, an upgrade followed by frames):
 * core_http_adopt() serves one end of a socketpair, the input goes in
 * at the other, and the client reads every answer until the server
 * closes.  Routes answer at once, from the body, with parameters, and
 * later, out of order, so that the pipelining queue is exercised too.
 * After each input no connection may remain.
 */
#include <stdint.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>

#include "fuzz.h"
#include "http.h"
#include "json.h"
#include "router.h"
#include "ws.h"

#define LATER_MAX	8

static struct sales_request	*later[LATER_MAX];
static int			 nlater;
static struct event		*later_ev;

static void
answer_echo(struct sales_request *req, void *arg)
{
	const char *body;
	size_t len;

	(void)arg;
	body = core_http_body(req, &len);
	core_http_respond(req, 200, "application/octet-stream", body, len);
}

static void
answer_item(struct sales_request *req, void *arg)
{
	const char *id, *q, *h;
	char out[512];
	int n;

	(void)arg;
	id = core_http_param(req, "id");
	q = core_http_query(req, "q");
	h = core_http_header(req, "X-Fuzz");
	if (core_http_add_header(req, "X-Item", id ? id : "") == -1) {
		core_http_error(req, 400, "bad_header", "\"id\" is no header "
		    "value", "id");
		return;
	}
	n = snprintf(out, sizeof(out), "%s %s %s %s", core_http_method(req),
	    core_http_path(req), q ? q : "-", h ? h : "-");
	core_http_respond(req, 200, "text/plain", out,
	    n < (int)sizeof(out) ? (size_t)n : sizeof(out) - 1);
}

static void
answer_json(struct sales_request *req, void *arg)
{
	struct sales_json *j;
	const char *body;
	size_t len;

	(void)arg;
	body = core_http_body(req, &len);
	if ((j = core_json_parse(body, len)) == NULL) {
		core_http_error(req, 400, "invalid_json", "not JSON", NULL);
		return;
	}
	core_http_respond(req, 201, "application/json", "{}", 2);
	core_json_free(j);
}

/* Answers the held requests newest first: out of request order. */
static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	while (nlater > 0)
		core_http_respond(later[--nlater], 202, "text/plain", "later",
		    5);
}

static void
answer_later(struct sales_request *req, void *arg)
{
	(void)arg;
	if (nlater == LATER_MAX) {
		core_http_error(req, 503, "busy", "too many held", NULL);
		return;
	}
	later[nlater++] = req;
	event_active(later_ev, EV_TIMEOUT, 0);
}

static void
ws_echo(uint64_t client, const char *data, size_t len, void *arg)
{
	(void)arg;
	(void)core_ws_send(client, "echo", data, len);
}

static size_t
busy(void)
{
	return core_http_connections() + core_ws_clients() +
	    (size_t)nlater;
}

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct core_http_config cfg = {
		.host = "127.0.0.1",
		.port = 0,
		.max_body = 4096,
		.max_header = 1024,
		.header_timeout_ms = 200,
		.body_timeout_ms = 200,
		.idle_timeout_ms = 200,
		.max_pipeline = 4,
		.max_connections = 8,
	};
	struct core_ws_config ws = {
		.max_message = 4096,
		.max_buffered = 16384,
		.idle_ping_ms = 0,
	};

	(void)argc;
	(void)argv;
	fuzz_loop_init();
	core_ws_configure(&ws);
	if ((later_ev = event_new(core_base, -1, 0, later_cb, NULL)) == NULL ||
	    core_router_add("fuzz", "POST", "/echo", answer_echo, NULL) ||
	    core_router_add("fuzz", "GET", "/items/{id}", answer_item, NULL) ||
	    core_router_add("fuzz", "PUT", "/items/{id}", answer_item, NULL) ||
	    core_router_add("fuzz", "POST", "/json", answer_json, NULL) ||
	    core_router_add("fuzz", "GET", "/later", answer_later, NULL) ||
	    core_ws_on_message("fuzz", "echo", ws_echo, NULL) ||
	    core_http_start(&cfg) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 ||
	    evutil_make_socket_nonblocking(sv[0]) == -1 ||
	    evutil_make_socket_nonblocking(sv[1]) == -1)
		abort();
	if (core_http_adopt(sv[0]) == -1)
		abort();
	fuzz_client(sv[1], data, size);
	fuzz_drain(sv[1], busy);
	return 0;
}
