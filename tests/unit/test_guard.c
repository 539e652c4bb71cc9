/*
 * test_guard.c - the request policy of core/guard.c on fake requests: the
 * HTTP services it calls are stubbed here, so no server runs (core/http.c
 * is not linked in).  Open routes are registered in the real router.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <strings.h>

#include "config.h"
#include "guard.h"
#include "http.h"
#include "router.h"
#include "unit.h"

struct sales_request {
	const char	*method;
	const char	*path;
	const char	*token;		/* ?token= */
	const char	*hdr[8][2];
	int		 status;
	const char	*code;
	char		 added[512];
};

const char *
core_http_method(struct sales_request *req)
{
	return req->method;
}

const char *
core_http_path(struct sales_request *req)
{
	return req->path;
}

const char *
core_http_query(struct sales_request *req, const char *name)
{
	return strcmp(name, "token") == 0 ? req->token : NULL;
}

const char *
core_http_header(struct sales_request *req, const char *name)
{
	int i;

	for (i = 0; i < 8 && req->hdr[i][0] != NULL; i++)
		if (strcasecmp(req->hdr[i][0], name) == 0)
			return req->hdr[i][1];
	return NULL;
}

int
core_http_add_header(struct sales_request *req, const char *name,
    const char *value)
{
	size_t n = strlen(req->added);

	snprintf(req->added + n, sizeof(req->added) - n, "%s: %s\n", name,
	    value);
	return 0;
}

void
core_http_error(struct sales_request *req, int status, const char *code,
    const char *message, const char *field)
{
	(void)message;
	(void)field;
	req->status = status;
	req->code = code;
}

static int
configure(const char *text, const char *host)
{
	char *dir = unit_tmpdir(), path[4096], err[256];
	struct core_config *cfg;
	int rc;

	snprintf(path, sizeof(path), "%s", unit_write_file(dir, "sales.ini",
	    text));
	if ((cfg = core_config_load(path, err, sizeof(err))) == NULL)
		return -2;
	rc = core_guard_configure(cfg, host);
	core_config_free(cfg);
	return rc;
}

/* Status of a request (0: let through) with Host, one more header. */
static int
check(const char *method, const char *path, const char *host,
    const char *name, const char *value, int upgrade)
{
	struct sales_request r;

	memset(&r, 0, sizeof(r));
	r.method = method;
	r.path = path;
	r.hdr[0][0] = "Host";
	r.hdr[0][1] = host;
	r.hdr[1][0] = name;
	r.hdr[1][1] = value;
	if (host == NULL) {
		r.hdr[0][0] = name;
		r.hdr[0][1] = value;
		r.hdr[1][0] = NULL;
	}
	return core_guard_check(&r, host == NULL, upgrade) == 0 ? 0 :
	    r.status;
}

static void
test_media_type(void **state)
{
	static const char *good[] = { "application/json", "APPLICATION/Json",
	    "application/json;charset=utf-8", " application/json ; charset="
	    "\"UTF-8\"", "application/json; v=1; charset=utf-8",
	    "application/json;" };
	static const char *bad[] = { "text/plain", "text/plain; charset=utf-8",
	    "application/x-www-form-urlencoded", "multipart/form-data",
	    "application/jsonp", "application/json+x", "application/json; "
	    "charset=latin1", "application/json; charset=\"utf-8",
	    "application/json; =x", "application/json x", "" };
	size_t i;

	(void)state;
	assert_int_equal(configure("[server]\n", "127.0.0.1"), 0);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(check("POST", "/x", "localhost", "Content-Type",
		    good[i], 0), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(check("POST", "/x", "localhost", "Content-Type",
		    bad[i], 0), 415);
	assert_int_equal(check("POST", "/x", "localhost", "X", "y", 0), 415);
	assert_int_equal(check("PATCH", "/x", "localhost", "X", "y", 0), 415);
	assert_int_equal(check("PUT", "/x", "localhost", "X", "y", 0), 415);
	assert_int_equal(check("DELETE", "/x", "localhost", "X", "y", 0), 0);
	assert_int_equal(check("GET", "/x", "localhost", "X", "y", 0), 0);
	core_guard_free();
}

static void
test_host(void **state)
{
	static const char *good[] = { "localhost", "LOCALHOST:1", "localhost.",
	    "127.0.0.1", "10.0.0.1:80", "[::1]", "[::1]:3000", "[fe80::1]",
	    "sales.lan", "Sales.Lan.:8080" };
	static const char *bad[] = { "evil.example", "", ":80", "sales.lan:x",
	    "sales.lan:99999", "sales.lan:", "[::1", "::1", "a b",
	    "sales.lan.evil.example", "127.0.0.1.evil.example", "[sales.lan]",
	    "localhost:80:80" };
	size_t i;

	(void)state;
	assert_int_equal(configure("[server]\n", "sales.lan"), 0);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(check("GET", "/", good[i], "X", "y", 0), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(check("GET", "/", bad[i], "X", "y", 0), 421);
	/* HTTP/1.0 may omit Host. */
	assert_int_equal(check("GET", "/", NULL, "X", "y", 0), 0);
	assert_int_equal(configure("[server]\nallowed_hosts = a.example, "
	    "b.example:1\n", "sales.lan"), 0);
	assert_int_equal(check("GET", "/", "sales.lan", "X", "y", 0), 421);
	assert_int_equal(check("GET", "/", "b.example", "X", "y", 0), 0);
	assert_int_equal(configure("[server]\nallowed_hosts = *\n", "x"), 0);
	assert_int_equal(check("GET", "/", "anything", "X", "y", 0), 0);
	assert_int_equal(configure("[server]\nallowed_hosts = a/b\n", "x"), -1);
	core_guard_free();
}

static void
test_origin(void **state)
{
	(void)state;
	assert_int_equal(configure("[server]\ncors_origins = "
	    "https://dash.example HTTP://Other.Example:8080/\n", "127.0.0.1"),
	    0);
	assert_int_equal(check("GET", "/", "localhost:3000", "Origin",
	    "http://localhost:3000", 1), 0);
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "https://localhost", 1), 0);
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "https://localhost:80", 1), 403);
	assert_int_equal(check("GET", "/", "localhost:3000", "Origin",
	    "http://localhost:3001", 1), 403);
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "https://dash.example:443", 1), 0);
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "http://other.example:8080", 1), 0);
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "http://dash.example", 1), 403);
	assert_int_equal(check("GET", "/", "localhost", "Origin", "null", 1),
	    403);
	/* Plain requests are not refused for their Origin. */
	assert_int_equal(check("GET", "/", "localhost", "Origin", "null", 0),
	    0);
	assert_int_equal(configure("[server]\ncors_origins = dash.example\n",
	    "x"), -1);
	assert_int_equal(configure("[server]\ncors_origins = https://d.example"
	    "/path\n", "x"), -1);
	core_guard_free();
}

static void
test_tokens(void **state)
{
	struct sales_request r;

	(void)state;
	assert_int_equal(configure("[auth]\nwrite_token = short\n", "x"), -1);
	assert_int_equal(configure("[auth]\nread_token = rrrrrrrrrrrrrrrr\n"
	    "write_token = wwwwwwwwwwwwwwww\nops_token = oooooooooooooooo\n",
	    "127.0.0.1"), 0);
	assert_int_equal(check("GET", "/a", "localhost", "X", "y", 0), 401);
	assert_int_equal(check("GET", "/a", "localhost", "Authorization",
	    "Bearer rrrrrrrrrrrrrrrr", 0), 0);
	assert_int_equal(check("GET", "/a", "localhost", "Authorization",
	    "Bearer rrrrrrrrrrrrrrr", 0), 401);
	assert_int_equal(check("GET", "/a", "localhost", "Authorization",
	    "Bearer wwwwwwwwwwwwwwww", 0), 0);
	assert_int_equal(check("OPTIONS", "/a", "localhost", "X", "y", 0), 0);
	assert_int_equal(check("DELETE", "/a", "localhost", "Authorization",
	    "Bearer rrrrrrrrrrrrrrrr", 0), 403);
	assert_int_equal(check("DELETE", "/a", "localhost", "Authorization",
	    "Bearer wwwwwwwwwwwwwwww", 0), 0);
	assert_int_equal(check("GET", "/health", "localhost", "Authorization",
	    "Bearer rrrrrrrrrrrrrrrr", 0), 403);
	assert_int_equal(check("GET", "/metrics", "localhost", "Authorization",
	    "Bearer oooooooooooooooo", 0), 0);
	/* The router decodes the path: so does the ops check. */
	assert_int_equal(check("GET", "/%68ealth", "localhost", "Authorization",
	    "Bearer rrrrrrrrrrrrrrrr", 0), 403);
	assert_int_equal(check("GET", "/metric%73", "localhost", "X", "y", 0),
	    401);
	/* ?token= counts on a WebSocket handshake only. */
	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = "/";
	r.token = "rrrrrrrrrrrrrrrr";
	r.hdr[0][0] = "Host";
	r.hdr[0][1] = "localhost";
	assert_int_equal(core_guard_check(&r, 0, 1), 0);
	assert_int_equal(core_guard_check(&r, 0, 0), -1);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.added, "WWW-Authenticate: Bearer "
	    "realm=\"salesd\"\n"));
	core_guard_free();
}

/* A CORS preflight of origin, with Host localhost; its status (0: on). */
static int
preflight(struct sales_request *r, const char *origin)
{
	memset(r, 0, sizeof(*r));
	r->method = "OPTIONS";
	r->path = "/orders";
	r->hdr[0][0] = "Host";
	r->hdr[0][1] = "localhost";
	r->hdr[1][0] = "Origin";
	r->hdr[1][1] = origin;
	r->hdr[2][0] = "Access-Control-Request-Method";
	r->hdr[2][1] = "POST";
	return core_guard_check(r, 0, 0) == 0 ? 0 : r->status;
}

static void
test_cors(void **state)
{
	struct sales_request r;

	(void)state;
	/* Empty by default: no header, and every preflight refused. */
	assert_int_equal(configure("[auth]\nwrite_token = wwwwwwwwwwwwwwww\n",
	    "127.0.0.1"), 0);
	assert_int_equal(preflight(&r, "https://dash.example"), 403);
	assert_string_equal(r.code, "origin_not_allowed");
	assert_string_equal(r.added, "");
	assert_int_equal(check("GET", "/", "localhost", "Origin",
	    "https://dash.example", 0), 0);

	assert_int_equal(configure("[server]\ncors_origins = "
	    "https://dash.example\n[auth]\nwrite_token = wwwwwwwwwwwwwwww\n",
	    "127.0.0.1"), 0);
	/* No token needed; the methods come from the caller (the router). */
	assert_int_equal(preflight(&r, "https://dash.example:443"), 0);
	core_guard_preflight(&r, "GET, HEAD, POST, OPTIONS");
	assert_string_equal(r.added, "Vary: Origin\n"
	    "Access-Control-Allow-Origin: https://dash.example:443\n"
	    "Access-Control-Expose-Headers: Location, Idempotent-Replayed, "
	    "WWW-Authenticate, Allow, Accept-Post, Accept-Patch\n"
	    "Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\n"
	    "Access-Control-Allow-Headers: Content-Type, Idempotency-Key, "
	    "Authorization\n"
	    "Access-Control-Max-Age: 600\n");
	assert_int_equal(preflight(&r, "https://evil.example"), 403);
	assert_string_equal(r.added, "Vary: Origin\n");
	assert_int_equal(preflight(&r, "null"), 403);
	/* Our own page (same host and port) needs no listing. */
	assert_int_equal(preflight(&r, "http://localhost"), 0);
	core_guard_preflight(&r, "GET, OPTIONS");
	assert_null(strstr(r.added, "Access-Control-Allow-Methods"));
	/* A listed page reads the refusal of its write. */
	memset(&r, 0, sizeof(r));
	r.method = "POST";
	r.path = "/orders";
	r.hdr[0][0] = "Host";
	r.hdr[0][1] = "localhost";
	r.hdr[1][0] = "Origin";
	r.hdr[1][1] = "https://dash.example";
	assert_int_equal(core_guard_check(&r, 0, 0), -1);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.added, "Access-Control-Allow-Origin: "
	    "https://dash.example\n"));
	/* Answers the server makes on its own (a 413, a 408). */
	memset(&r, 0, sizeof(r));
	core_guard_cors(&r, "https://dash.example");
	assert_non_null(strstr(r.added, "Access-Control-Expose-Headers: "));
	memset(&r, 0, sizeof(r));
	core_guard_cors(&r, NULL);
	assert_string_equal(r.added, "Vary: Origin\n");
	core_guard_free();
}

static void
page(struct sales_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

/* An open route needs no token; every other read still does. */
static void
test_open_route(void **state)
{
	struct sales_request r;

	(void)state;
	assert_int_equal(core_router_add_open("t", "/", page, NULL), 0);
	assert_int_equal(core_router_add_open("t", "/dash/{file}", page,
	    NULL), 0);
	assert_int_equal(core_router_add("t", "GET", "/data", page, NULL), 0);
	assert_int_equal(core_router_add("t", "POST", "/", page, NULL), 0);
	assert_int_equal(configure("[auth]\nread_token = rrrrrrrrrrrrrrrr\n"
	    "write_token = wwwwwwwwwwwwwwww\nops_token = oooooooooooooooo\n",
	    "127.0.0.1"), 0);
	assert_int_equal(check("GET", "/", "localhost", "X", "y", 0), 0);
	assert_int_equal(check("HEAD", "/", "localhost", "X", "y", 0), 0);
	assert_int_equal(check("GET", "/dash/app.js", "localhost", "X", "y",
	    0), 0);
	/* A wrong token on an open route is not looked at. */
	assert_int_equal(check("GET", "/", "localhost", "Authorization",
	    "Bearer nope", 0), 0);
	assert_int_equal(check("GET", "/data", "localhost", "X", "y", 0), 401);
	assert_int_equal(check("GET", "/dash", "localhost", "X", "y", 0), 401);
	assert_int_equal(check("GET", "/nope", "localhost", "X", "y", 0), 401);
	assert_int_equal(check("GET", "/health", "localhost", "X", "y", 0),
	    401);
	assert_int_equal(check("POST", "/", "localhost", "Content-Type",
	    "application/json", 0), 401);
	/* The WebSocket handshake on the page's path needs its token. */
	assert_int_equal(check("GET", "/", "localhost", "X", "y", 1), 401);
	memset(&r, 0, sizeof(r));
	r.method = "GET";
	r.path = "/";
	r.token = "rrrrrrrrrrrrrrrr";
	r.hdr[0][0] = "Host";
	r.hdr[0][1] = "localhost";
	assert_int_equal(core_guard_check(&r, 0, 1), 0);
	/* The Host check still applies. */
	assert_int_equal(check("GET", "/", "evil.example", "X", "y", 0), 421);
	core_guard_free();
	core_router_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_media_type),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_cors),
		cmocka_unit_test(test_open_route),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
