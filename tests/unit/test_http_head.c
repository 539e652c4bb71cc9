/*
 * test_http_head.c - core/http_head.c on its own: the strict framing
 * check of raw request heads (RFC 9112), byte-exact cases, and heads
 * arriving a byte at a time.  No server, no loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_head.h"

struct hcase {
	const char	*head;
	int		 status;	/* 0: accepted */
};

static const struct hcase cases[] = {
	/* Normal requests. */
	{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
	{ "GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-A:b\r\nX-B: \t c d \r\n\r\n",
	    0 },
	{ "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
	{ "GET / HTTP/1.0\r\n\r\n", 0 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
	    0 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 0 },
	{ "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
	{ "GET / HTTP/2.0\r\n\r\n", 0 },	/* the parser says 505 */
	/* Line ends. */
	{ "GET / HTTP/1.1\nHost: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\n\n", 400 },
	{ "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400 },
	{ "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	/* Request line. */
	{ "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400 },
	{ "GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400 },
	{ "GET / http/1.1\r\nHost: a\r\n\r\n", 400 },
	{ "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
	/* Field lines. */
	{ "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX(: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\001b\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400 },
	/* Host. */
	{ "GET / HTTP/1.1\r\n\r\n", 400 },
	{ "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400 },
	{ "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400 },
	/* Content-Length. */
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
	    "Content-Length: 2\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
	    "Content-Length: 1\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
	    "1234567890123456789\r\n\r\n", 400 },
	/* Transfer-Encoding. */
	{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	    400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
	    "\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
	    "\r\n\r\n", 501 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	    400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400 },
	{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	    400 },
};

static int
check_all(const char *p, size_t len, struct core_http_head *h)
{
	core_http_head_init(h);
	return core_http_head_check(h, p, len);
}

static void
test_cases(void **state)
{
	struct core_http_head h;
	size_t i, len;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].head);
		rc = check_all(cases[i].head, len, &h);
		if (cases[i].status == 0) {
			if (rc != CORE_HTTP_HEAD_OK)
				fail_msg("case %zu refused (%s): %s", i, h.msg,
				    cases[i].head);
			assert_int_equal(h.end, len);
		} else {
			if (rc != CORE_HTTP_HEAD_BAD)
				fail_msg("case %zu accepted: %s", i,
				    cases[i].head);
			assert_int_equal(h.status, cases[i].status);
			assert_non_null(h.msg);
		}
	}
}

/* NUL is not a C string's friend: its own case. */
static void
test_nul(void **state)
{
	static const char head[] =
	    "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	static const char line[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
	struct core_http_head h;

	(void)state;
	assert_int_equal(check_all(head, sizeof(head) - 1, &h),
	    CORE_HTTP_HEAD_BAD);
	assert_int_equal(check_all(line, sizeof(line) - 1, &h),
	    CORE_HTTP_HEAD_BAD);
}

/* A byte at a time, the verdict is the same and comes at the right byte. */
static void
test_incremental(void **state)
{
	struct core_http_head h, whole;
	size_t i, k, len;
	int rc, want;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].head);
		want = check_all(cases[i].head, len, &whole);
		core_http_head_init(&h);
		rc = CORE_HTTP_HEAD_MORE;
		for (k = 1; k <= len && rc == CORE_HTTP_HEAD_MORE; k++)
			rc = core_http_head_check(&h, cases[i].head, k);
		assert_int_equal(rc, want);
		assert_int_equal(h.status, whole.status);
		if (want == CORE_HTTP_HEAD_OK)
			assert_int_equal(k - 1, len);
	}
}

/* Bytes after the head (a body, the next request) are not looked at. */
static void
test_stops_at_end(void **state)
{
	static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 4\r\n\r\n\n\r\0x";
	struct core_http_head h;

	(void)state;
	assert_int_equal(check_all(req, sizeof(req) - 1, &h),
	    CORE_HTTP_HEAD_OK);
	assert_int_equal(h.end, sizeof(req) - 5);
	/* Incomplete: no verdict, not a refusal. */
	assert_int_equal(check_all(req, 20, &h), CORE_HTTP_HEAD_MORE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_stops_at_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
