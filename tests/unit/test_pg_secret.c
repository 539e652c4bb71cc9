/*
 * test_pg_secret.c - the PostgreSQL driver's masking of the url's
 * password in messages (core/drivers/postgres/postgres_secret.c),
 * without a server: each spelling the url gives it, messages that
 * grow past their buffer, and libpq's parse errors.  What the server
 * says end to end is tests/e2e/test_pg_secrets.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "postgres.h"

static void
expect(const char *url, const char *msg, const char *want)
{
	char got[512];

	pg_secret_url(url);
	snprintf(got, sizeof(got), "%s", msg);
	pg_secret_hide(got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("url \"%s\"\n  gave \"%s\"\n  want \"%s\"", url, got,
		    want);
}

static void
test_user_info(void **state)
{
	(void)state;
	expect("postgresql://u:Zeb%23ra@h:5432/db",
	    "in URI: \"postgresql://u:Zeb%23ra@h:5432/db\" (Zeb#ra)",
	    "in URI: \"postgresql://u:***@h:5432/db\" (***)");
	expect("postgres://u:pw@h/db?x=1", "a pw b", "a *** b");
	/* No password, an empty one: nothing to mask. */
	expect("postgresql://u@h/db", "u@h/db", "u@h/db");
	expect("postgresql://u:@h/db", "u:@h/db", "u:@h/db");
	/* ':' past the user info is a port's. */
	expect("postgresql://h:5432/db", "h:5432", "h:5432");
}

static void
test_query(void **state)
{
	(void)state;
	expect("postgresql://u@h/db?sslmode=require&password=p%41ss",
	    "token: \"p%41ss\" or pAss, sslmode=require",
	    "token: \"***\" or ***, sslmode=require");
	expect("postgresql://u@h/db?sslpassword=kk1", "kk1!", "***!");
}

static void
test_keywords(void **state)
{
	(void)state;
	expect("host=h password='a b\\'c' port=1",
	    "x a b\\'c y a b'c z", "x *** y *** z");
	expect("host=h password=plain port=1", "plain port", "*** port");
	/* A dbname that is a URL is looked into. */
	expect("dbname=postgresql://u:inner@h/db", "inner", "***");
}

/* Growing messages stay within their buffer, cut, never the secret. */
static void
test_bounds(void **state)
{
	const char *msg = "1 a 1 b 1 c 1";
	size_t size;
	char *buf;

	(void)state;
	pg_secret_url("postgresql://u:1@h/db");
	for (size = 1; size < 32; size++) {
		buf = malloc(size);	/* exact: the sanitizer sees overruns */
		assert_non_null(buf);
		snprintf(buf, size, "%s", msg);
		pg_secret_hide(buf, size);
		assert_true(strlen(buf) < size);
		assert_null(strchr(buf, '1'));
		free(buf);
	}
	/* A password that the mask holds: no endless loop. */
	expect("postgresql://u:*@h/db", "a*b", "a***b");
	expect("postgresql://u:**@h/db", "**", "***");
}

static void
parse_error(const char *url, const char *msg, const char *want)
{
	char got[512];

	pg_secret_url(url);
	snprintf(got, sizeof(got), "%s", msg);
	pg_secret_parse_error(got, sizeof(got), url);
	if (strcmp(got, want) != 0)
		fail_msg("url \"%s\"\n  gave \"%s\"\n  want \"%s\"", url, got,
		    want);
}

static void
test_parse_errors(void **state)
{
	(void)state;
	/* A bare word may be a password without its key. */
	parse_error("host=h Zebra7",
	    "missing \"=\" after \"Zebra7\" in connection info string",
	    "missing \"=\" after \"***\" in connection info string");
	parse_error("postgresql://u@h/db?Zebra7",
	    "missing key/value separator \"=\" in URI query parameter: "
	    "\"Zebra7\"",
	    "missing key/value separator \"=\" in URI query parameter: "
	    "\"***\"");
	/* A key is named: it helps and is no secret. */
	parse_error("host=h password=pw nosuch=1",
	    "invalid connection option \"nosuch\"",
	    "invalid connection option \"nosuch\"");
	/* The whole url, its password masked. */
	parse_error("postgresql://u:pw@[::1/db",
	    "matching \"]\" in IPv6 host address in URI: "
	    "\"postgresql://u:pw@[::1/db\"",
	    "matching \"]\" in IPv6 host address in URI: "
	    "\"postgresql://u:***@[::1/db\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_info),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_parse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
