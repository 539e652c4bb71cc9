/*
 * test_pg_sql.c - the PostgreSQL driver's translation of the modules'
 * statements (core/drivers/postgres/postgres_sql.c), without a server:
 * parameters, 64-bit integers, aliases for subqueries in FROM, INSERT
 * OR IGNORE, and what must pass untouched (literals, identifiers,
 * comments).  INSERT OR REPLACE reads the catalog and is covered by
 * tests/e2e/test_postgres.py.
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

/* postgres.c's, which this test does not link. */
void
pg_result_error(struct pg_conn *c, PGresult *r, char *err, size_t errlen)
{
	(void)c;
	(void)r;
	snprintf(err, errlen, "no server in this test");
}

static void
expect(const char *in, const char *out)
{
	char err[256], *got;

	err[0] = '\0';
	got = pg_translate(NULL, in, err, sizeof(err));
	if (got == NULL)
		fail_msg("\"%s\": %s", in, err);
	if (strcmp(got, out) != 0)
		fail_msg("\"%s\"\n  gave \"%s\"\n  want \"%s\"", in, got, out);
	free(got);
}

static void
test_parameters(void **state)
{
	(void)state;
	expect("SELECT 1 FROM t WHERE a = ?1 AND b >= ?2",
	    "SELECT 1 FROM t WHERE a = $1 AND b >= $2");
	expect("DELETE FROM t WHERE c < ?12", "DELETE FROM t WHERE c < $12");
	/* Anonymous ? numbered on from the highest so far. */
	expect("SELECT ?2, ?, ?", "SELECT $2, $3, $4");
	/* Not in literals, quoted names or comments. */
	expect("SELECT '?1', \"a?\" FROM t -- ?3\nWHERE x = ?1",
	    "SELECT '?1', \"a?\" FROM t -- ?3\nWHERE x = $1");
	expect("SELECT 'it''s ?1' WHERE y = ?1",
	    "SELECT 'it''s ?1' WHERE y = $1");
}

static void
test_integer(void **state)
{
	(void)state;
	expect("SELECT CAST(round(p * 1000000.0) AS INTEGER) FROM t",
	    "SELECT CAST(round(p * 1000000.0) AS BIGINT) FROM t");
	expect("SELECT cast(x as integer), integer_col, 'INTEGER' FROM t",
	    "SELECT cast(x as BIGINT), integer_col, 'INTEGER' FROM t");
}

static void
test_subquery_alias(void **state)
{
	(void)state;
	expect("SELECT a FROM (SELECT a FROM t WHERE b > ?1) GROUP BY a",
	    "SELECT a FROM (SELECT a FROM t WHERE b > $1) AS _d1 GROUP BY a");
	expect("SELECT a FROM ( select a FROM t)",
	    "SELECT a FROM ( select a FROM t) AS _d1");
	/* An alias of its own stays; a parenthesis elsewhere gets none. */
	expect("SELECT s.a FROM (SELECT a FROM t) s WHERE (s.a > 1)",
	    "SELECT s.a FROM (SELECT a FROM t) s WHERE (s.a > 1)");
	expect("SELECT a FROM (SELECT a FROM t) AS q",
	    "SELECT a FROM (SELECT a FROM t) AS q");
	expect("SELECT COUNT(*) FROM t WHERE id IN (SELECT id FROM u)",
	    "SELECT COUNT(*) FROM t WHERE id IN (SELECT id FROM u)");
	expect("SELECT * FROM (SELECT 1) JOIN (SELECT 2) ON true",
	    "SELECT * FROM (SELECT 1) AS _d1 JOIN (SELECT 2) AS _d2 ON true");
}

static void
test_insert_or_ignore(void **state)
{
	(void)state;
	expect("INSERT OR IGNORE INTO t(a, b) VALUES (?1, ?2);",
	    "INSERT INTO t(a, b) VALUES ($1, $2) ON CONFLICT DO NOTHING");
	expect("insert  or ignore\ninto t VALUES (?1)",
	    "INSERT INTO t VALUES ($1) ON CONFLICT DO NOTHING");
	/* Plain statements pass as they are. */
	expect("INSERT INTO orders(id, product_id) VALUES (?1, ?2)",
	    "INSERT INTO orders(id, product_id) VALUES ($1, $2)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_integer),
		cmocka_unit_test(test_subquery_alias),
		cmocka_unit_test(test_insert_or_ignore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
