/*
 * http.c - the HTTP/1.1 server: what the core does with a complete
 * request, between reading it and a module answering it.
 *
 * The server is in six files, one concern each (core/http_int.h holds
 * what they share):
 *
 *	http_conn.c	 the listener and every connection: accept, reading,
 *			 pipelining, bytes held, limits, timeouts, closing,
 *			 the WebSocket hand-over
 *	http_head.c	 the strict RFC 9112 framing check of a request
 *			 head, before the parser sees it
 *	http_parse.c	 libhttp-parser's callbacks: the bytes of one request
 *			 made into a request object, refused past a limit
 *	http_request.c	 the request object, reused, and its accessors
 *	http_response.c	 answers: status line, headers, body, strictly in
 *			 request order; the JSON error shape; the counts
 *	http.c		 this file: the policy between the two ends
 *
 * Here a queued request goes, in this order, to core/guard.c (who may
 * do what; it answers a refusal), to the WebSocket handshake check, or
 * to core/router.c and its module's handler; what no route takes is
 * answered here.
 *
 * Routing policy for the WebSocket paths "/" and "/ws": a GET carrying
 * "Upgrade: websocket" is always a WebSocket handshake (checked here,
 * completed by core/ws.c).  Without the Upgrade header the request is
 * routed normally, so a module may serve a page at "/"; if no module
 * did, a GET is answered 426 (upgrade required) and other methods 405.
 *
 * OPTIONS on a path some route has, when no module took OPTIONS itself,
 * is answered here: 204 with Allow (RFC 9110 9.3.7), and for a CORS
 * preflight what core/guard.c adds.  Every answer made here for a
 * request whose head was read carries the CORS headers the guard gives
 * its origin, so that a listed page can read a 413 or a 408 too.
 *
 * Not here: WebSocket framing (core/ws.c), routes (core/router.c),
 * anything that knows what a request means.
 */
#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "http_int.h"
#include "router.h"
#include "ws.h"

/* What "/" and "/ws" answer when no module routes them. */
#define WS_ALLOW	"GET, HEAD, OPTIONS"

static int
ws_path(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/ws") == 0;
}

/* Checks a request that asked for "Upgrade: websocket"; 0 when valid. */
static int
ws_check(struct http_conn *c, struct sales_request *r)
{
	const char *key, *ver;
	char accept[29];

	if (strcmp(r->method, "GET") != 0 || r->http10) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "is an HTTP/1.1 GET", NULL);
		return -1;
	}
	if (!core_http_req_has_token(r, "Connection", "upgrade")) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "needs \"Connection: Upgrade\"", "Connection");
		return -1;
	}
	ver = core_http_header(r, "Sec-WebSocket-Version");
	if (ver == NULL || strcmp(ver, "13") != 0) {
		core_http_req_add_header(r, "Sec-WebSocket-Version", "13");
		core_http_error(r, 426, "unsupported_websocket_version",
		    "only WebSocket version 13 is supported",
		    "Sec-WebSocket-Version");
		return -1;
	}
	/* Checked here, where a clear 400 can still be sent. */
	key = core_http_header(r, "Sec-WebSocket-Key");
	if (key == NULL || core_ws_accept_key(key, accept) == -1) {
		core_http_error(r, 400, "bad_upgrade", "\"Sec-WebSocket-Key\" "
		    "must be the base64 of 16 bytes", "Sec-WebSocket-Key");
		return -1;
	}
	if (r->body.len > 0 || (c->parser.flags & F_CHUNKED)) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "has no body", NULL);
		return -1;
	}
	return 0;
}

/*
 * OPTIONS on a path whose methods are allow (OPTIONS among them): 204
 * with Allow, and for a CORS preflight the guard's headers.
 */
static void
conn_options(struct sales_request *r, const char *allow)
{
	core_guard_preflight(r, allow);
	core_http_req_add_header(r, "Allow", allow);
	core_http_respond(r, 204, NULL, NULL, 0);
}

/* A complete request: route it (it is already queued). */
void
core_http_dispatch(struct http_conn *c, struct sales_request *r)
{
	enum core_route_result res;
	char msg[160];
	int upgrade;

	upgrade = ws_path(r->path) &&
	    core_http_req_has_token(r, "Upgrade", "websocket");
	/* Who may do what (core/guard.c); a refused request is answered. */
	if (core_guard_check(r, r->http10, upgrade) == -1) {
		if (upgrade)
			c->no_more = 1;		/* the rest was for ws.c */
		return;
	}
	if (upgrade) {
		/* Nothing past this head is parsed: the rest is ws.c's. */
		c->no_more = 1;
		if (ws_check(c, r) == 0)
			r->ws = 1;
		return;
	}
	res = core_router_match(r->method, r->path, &r->match);
	switch (res) {
	case CORE_ROUTE_FOUND:
		r->dispatched = 1;
		r->match.handler(r, r->match.arg);
		/* r may be gone now. */
		return;
	case CORE_ROUTE_BAD_METHOD:
		if (strcmp(r->method, "OPTIONS") == 0) {
			conn_options(r, r->match.allow);
			return;
		}
		core_http_req_add_header(r, "Allow", r->match.allow);
		snprintf(msg, sizeof(msg), "method \"%s\" not allowed here; "
		    "use %s", r->method, r->match.allow);
		core_http_error(r, 405, "method_not_allowed", msg, NULL);
		return;
	case CORE_ROUTE_NOT_FOUND:
		break;
	}
	if (ws_path(r->path) && (strcmp(r->method, "GET") == 0 ||
	    strcmp(r->method, "HEAD") == 0)) {
		core_http_req_add_header(r, "Upgrade", "websocket");
		core_http_error(r, 426, "upgrade_required", "this path speaks "
		    "WebSocket only: send a WebSocket handshake", NULL);
	} else if (ws_path(r->path) && strcmp(r->method, "OPTIONS") == 0) {
		conn_options(r, WS_ALLOW);
	} else if (ws_path(r->path)) {
		core_http_req_add_header(r, "Allow", WS_ALLOW);
		core_http_error(r, 405, "method_not_allowed", "this path "
		    "speaks WebSocket only (GET with \"Upgrade: websocket\")",
		    NULL);
	} else
		core_http_error(r, 404, "not_found", "no such resource", NULL);
}
