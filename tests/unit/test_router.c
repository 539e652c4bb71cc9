/*
 * test_router.c - core/router.c on its own: pattern checks, parameters
 * and their percent-decoding, specificity, 404 versus 405 with Allow,
 * HEAD falling back to GET, duplicates, open routes.  No server, no
 * loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static int	tag_a, tag_b, tag_c, tag_d, tag_e, tag_f;

static void
handler(struct sales_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static void
other_handler(struct sales_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static int
setup(void **state)
{
	(void)state;
	if (core_router_add("t", "GET", "/", handler, &tag_a) == -1 ||
	    core_router_add("t", "GET", "/orders", handler, &tag_b) == -1 ||
	    core_router_add("t", "POST", "/orders", handler, &tag_c) == -1 ||
	    core_router_add("t", "GET", "/orders/{id}", handler,
	    &tag_d) == -1 ||
	    core_router_add("t", "GET", "/orders/latest", other_handler,
	    &tag_e) == -1 ||
	    core_router_add("t", "DELETE", "/a/{x}/b/{y}", handler,
	    &tag_f) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	core_router_free();
	return 0;
}

static void
test_literal(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("GET", "/orders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_b);
	assert_int_equal(m.nparams, 0);
	core_route_match_free(&m);

	assert_int_equal(core_router_match("POST", "/orders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_c);
	core_route_match_free(&m);

	assert_int_equal(core_router_match("GET", "/", &m), CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_a);
	core_route_match_free(&m);
}

static void
test_params(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("GET", "/orders/42", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_d);
	assert_int_equal(m.nparams, 1);
	assert_string_equal(m.names[0], "id");
	assert_string_equal(m.values[0], "42");
	core_route_match_free(&m);

	assert_int_equal(core_router_match("DELETE", "/a/1/b/two", &m),
	    CORE_ROUTE_FOUND);
	assert_int_equal(m.nparams, 2);
	assert_string_equal(m.names[0], "x");
	assert_string_equal(m.values[0], "1");
	assert_string_equal(m.names[1], "y");
	assert_string_equal(m.values[1], "two");
	core_route_match_free(&m);
	assert_int_equal(m.nparams, 0);
}

static void
test_percent(void **state)
{
	struct core_route_match m;

	(void)state;
	/* Decoded; in a path '+' stays a plus, %2F stays in its segment. */
	assert_int_equal(core_router_match("GET", "/orders/a%20b+c%2Fd", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_d);
	assert_string_equal(m.values[0], "a b+c/d");
	core_route_match_free(&m);

	/* Literals compare decoded. */
	assert_int_equal(core_router_match("GET", "/%6Frders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_b);
	core_route_match_free(&m);

	/* UTF-8 passes through. */
	assert_int_equal(core_router_match("GET", "/orders/%C3%A9", &m),
	    CORE_ROUTE_FOUND);
	assert_string_equal(m.values[0], "\xc3\xa9");
	core_route_match_free(&m);

	/* Bad escapes and encoded NULs never match. */
	assert_int_equal(core_router_match("GET", "/orders/%zz", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "/orders/%4", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "/orders/%", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "/orders/a%00b", &m),
	    CORE_ROUTE_NOT_FOUND);
}

static void
test_specific(void **state)
{
	struct core_route_match m;

	(void)state;
	/* A literal beats a parameter, whatever the registration order. */
	assert_int_equal(core_router_match("GET", "/orders/latest", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_e);
	assert_ptr_equal(m.handler, other_handler);
	assert_int_equal(m.nparams, 0);
	core_route_match_free(&m);
}

static void
test_not_found(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("GET", "/nope", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_string_equal(m.allow, "");
	/* A parameter matches one non-empty component only. */
	assert_int_equal(core_router_match("GET", "/orders/", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "/orders/1/2", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "//orders", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "orders", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET", "", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_router_match("GET",
	    "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24"
	    "/25/26/27/28/29/30/31/32/33/34", &m), CORE_ROUTE_NOT_FOUND);
}

static void
test_bad_method(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("DELETE", "/orders", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD, POST, OPTIONS");
	assert_null(m.handler);
	assert_int_equal(m.nparams, 0);

	assert_int_equal(core_router_match("GET", "/a/1/b/2", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "DELETE, OPTIONS");

	assert_int_equal(core_router_match("PUT", "/orders/7", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD, OPTIONS");
}

/* OPTIONS is the core's on every known path; a route may still take it. */
static void
test_options(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("OPTIONS", "/orders/7", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD, OPTIONS");
	assert_int_equal(core_router_match("OPTIONS", "/nope", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_string_equal(m.allow, "");
	assert_int_equal(core_router_add("t", "OPTIONS", "/orders",
	    other_handler, NULL), 0);
	assert_int_equal(core_router_match("OPTIONS", "/orders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.handler, other_handler);
	assert_int_equal(core_router_match("DELETE", "/orders", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "GET, HEAD, POST, OPTIONS");
}

static void
test_head(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_match("HEAD", "/orders/9", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_d);
	assert_string_equal(m.values[0], "9");
	core_route_match_free(&m);

	/* An explicit HEAD route wins over the GET one. */
	assert_int_equal(core_router_add("t", "HEAD", "/orders", other_handler,
	    &tag_a), 0);
	assert_int_equal(core_router_match("HEAD", "/orders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.handler, other_handler);
	core_route_match_free(&m);
	assert_int_equal(core_router_match("GET", "/orders", &m),
	    CORE_ROUTE_FOUND);
	assert_ptr_equal(m.arg, &tag_b);
	core_route_match_free(&m);
	/* POST-only paths do not answer HEAD. */
	assert_int_equal(core_router_add("t", "POST", "/only-post", handler,
	    NULL), 0);
	assert_int_equal(core_router_match("HEAD", "/only-post", &m),
	    CORE_ROUTE_BAD_METHOD);
	assert_string_equal(m.allow, "POST, OPTIONS");
}

static void
test_duplicates(void **state)
{
	(void)state;
	assert_int_equal(core_router_add("t", "GET", "/orders", handler, NULL),
	    -1);
	/* Same shape, other parameter name: still ambiguous. */
	assert_int_equal(core_router_add("t", "GET", "/orders/{other}",
	    handler, NULL), -1);
	/* Other method or other literal: fine. */
	assert_int_equal(core_router_add("t", "PUT", "/orders/{id}", handler,
	    NULL), 0);
	assert_int_equal(core_router_add("t", "GET", "/orders/{id}/items",
	    handler, NULL), 0);
}

static void
test_malformed(void **state)
{
	static const char *bad[] = {
		"", "orders", "/orders/", "//orders", "/a//b", "/{}",
		"/{id", "/id}", "/{i d}", "/{a}/{a}", "/a b", "/a%20b",
		"/a?b", "/a#b", "/x{id}", "/{id}x", "/\x01",
		"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
		"/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22"
		"/23/24/25/26/27/28/29/30/31/32/33",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(core_router_add("t", "GET", bad[i], handler,
		    NULL), -1);
	assert_int_equal(core_router_add("t", "get", "/x", handler, NULL), -1);
	assert_int_equal(core_router_add("t", "", "/x", handler, NULL), -1);
	assert_int_equal(core_router_add("t", "GET", "/x", NULL, NULL), -1);
	assert_int_equal(core_router_add("t", NULL, "/x", handler, NULL), -1);
	assert_int_equal(core_router_add("t", "GET", NULL, handler, NULL), -1);
	/* The limits themselves are fine. */
	assert_int_equal(core_router_add("t", "GET",
	    "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", handler, NULL), 0);
	assert_int_equal(core_router_add("t", "GET",
	    "/v1/x-y_z.~!$&'()*+,;=:@", handler, NULL), 0);
}

static void
test_max_params(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_add("t", "GET",
	    "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", handler, &tag_f), 0);
	assert_int_equal(core_router_match("GET", "/1/2/3/4/5/6/7/8", &m),
	    CORE_ROUTE_FOUND);
	assert_int_equal(m.nparams, SALES_HTTP_MAX_PARAMS);
	assert_string_equal(m.names[7], "h");
	assert_string_equal(m.values[7], "8");
	core_route_match_free(&m);
}

/* Open routes: only the requests that reach one are open. */
static void
test_open(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_int_equal(core_router_add_open("t", "/page/{file}", handler,
	    &tag_a), 0);
	assert_int_equal(core_router_add("t", "GET", "/page/secret", handler,
	    &tag_b), 0);
	/* GET and HEAD of the open route; a duplicate is refused as ever. */
	assert_true(core_router_is_open("GET", "/page/app.js"));
	assert_true(core_router_is_open("HEAD", "/page/app%2Ejs"));
	assert_int_equal(core_router_add_open("t", "/page/{x}", handler,
	    NULL), -1);
	assert_int_equal(core_router_add_open("t", "page", handler, NULL), -1);
	assert_int_equal(core_router_match("GET", "/page/a", &m),
	    CORE_ROUTE_FOUND);
	assert_true(m.open);
	core_route_match_free(&m);
	/* A more specific literal route is not open, nor other paths. */
	assert_false(core_router_is_open("GET", "/page/secret"));
	assert_false(core_router_is_open("GET", "/page"));
	assert_false(core_router_is_open("GET", "/page/a/b"));
	assert_false(core_router_is_open("GET", "/orders"));
	assert_false(core_router_is_open("GET", "/"));
	/* Other methods on an open path are not open (405 later). */
	assert_false(core_router_is_open("POST", "/page/a"));
	assert_false(core_router_is_open("DELETE", "/page/a"));
	/* Forgotten with its owner. */
	core_router_forget("t");
	assert_false(core_router_is_open("GET", "/page/a"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_literal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_percent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_specific, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_not_found, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_method, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_options, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_max_params, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
