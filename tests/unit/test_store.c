/*
 * test_store.c - core/store.c with the SQLite driver on a temporary
 * database: group commit and its ordering, a failing unit rolled back
 * alone (also several, of different kinds, in one group), deep copies
 * of parameters and results, query_sync, migrations
 * (applied once, broken ones reported), close finishing queued work,
 * a separate SQLite connection seeing the rows, and storage faults:
 * the file moved or replaced underneath, healing without a write, a
 * -wal without its database, a file that is not a database; rows
 * returned by writes (store_write_rows, also through a group run again
 * with savepoints) and the watchers told of commits (store_watch).
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include "core.h"
#include "store.h"

#define BURST	2000

static char	tmpdir[256];
static char	dbpath[300];
static char	migdir[300];
static char	sqlroot[300];

struct outcome {
	int	 done;
	int	 status;
	int	 constraint;
	int	 seq;
	char	 err[256];
};

static int	seq;		/* completion counter */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void
rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	int (*done)(void) = (int (*)(void))arg;

	(void)fd;
	(void)what;
	if (done())
		event_base_loopbreak(core_base);
}

/* Runs the loop until done() or 10 s; fails the test on timeout. */
static void
run_until(int (*done)(void))
{
	struct timeval tv = { 0, 2000 };
	struct event *ev;
	int64_t start = core_mono_ms();

	if (done())
		return;
	ev = event_new(core_base, -1, EV_PERSIST, tick, (void *)done);
	event_add(ev, &tv);
	while (!done() && core_mono_ms() - start < 10000)
		event_base_loop(core_base, EVLOOP_ONCE);
	event_free(ev);
	assert_true(done());
}

static void
on_write(int status, int constraint, const char *err, void *arg)
{
	struct outcome *o = arg;

	o->done = 1;
	o->status = status;
	o->constraint = constraint;
	o->seq = seq++;
	if (err != NULL)
		snprintf(o->err, sizeof(o->err), "%s", err);
	else
		assert_int_equal(status, 0);
}

static int
idle(void)
{
	return core_store_pending() == 0;
}

static int
open_store(void)
{
	struct core_store_config cfg = {
		.driver = NULL,		/* the embedded default */
		.path = dbpath,
		.migrations = sqlroot,
		.max_group = 0,
	};

	/* The tables of a module "t", applied as the loader does. */
	if (core_store_open(&cfg) == -1)
		return -1;
	if (core_store_migrate("t", NULL) == -1) {
		core_store_close();
		return -1;
	}
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/* A nested path: the driver creates the parent directories. */
	snprintf(dbpath, sizeof(dbpath), "%s/db/sub/sales.db", tmpdir);
	snprintf(sqlroot, sizeof(sqlroot), "%s/sql", tmpdir);
	snprintf(migdir, sizeof(migdir), "%s/sql/t", tmpdir);
	if (mkdir(sqlroot, 0755) == -1 || mkdir(migdir, 0755) == -1)
		return -1;
	write_file(migdir, "001_items.sql",
	    "CREATE TABLE items (id INTEGER PRIMARY KEY, "
	    "name TEXT NOT NULL UNIQUE, n INTEGER, price REAL, data BLOB);\n");
	write_file(migdir, "002_big.sql",
	    "-- a table for slow units\n"
	    "CREATE TABLE big (x INTEGER);\n"
	    "CREATE INDEX big_x ON big(x);\n"
	    "-- checked only at COMMIT: a way to make a commit fail\n"
	    "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
	    "CREATE TABLE child (pid INTEGER REFERENCES parent(id) "
	    "DEFERRABLE INITIALLY DEFERRED);\n");
	write_file(migdir, "README", "not a migration");
	core_base = event_base_new();
	if (core_base == NULL)
		return -1;
	seq = 0;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	core_store_close();
	event_base_free(core_base);
	core_base = NULL;
	rm_rf(tmpdir);
	return 0;
}

static sqlite3_int64
count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	sqlite3_int64 n = -1;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int
insert(const char *name, long long n, struct outcome *o)
{
	struct sales_value v[2];
	struct sales_store_stmt s;

	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_TEXT;
	v[0].s = name;
	v[0].len = strlen(name);
	v[1].type = SALES_VALUE_INT;
	v[1].i = n;
	s.sql = "INSERT INTO items(name, n) VALUES (?1, ?2)";
	s.params = v;
	s.nparams = 2;
	return core_store_write(&s, 1, on_write, o);
}

/* Many units in one burst: all committed, in order, in fewer groups. */
static void
test_group_commit(void **state)
{
	static struct outcome out[BURST];
	char name[32];
	int i;

	(void)state;
	memset(out, 0, sizeof(out));
	assert_int_equal(open_store(), 0);
	assert_string_equal(core_store_driver_name(), "sqlite");
	assert_int_equal(core_store_writable(), 1);
	for (i = 0; i < BURST; i++) {
		snprintf(name, sizeof(name), "item-%d", i);
		assert_int_equal(insert(name, i, &out[i]), 0);
	}
	assert_true(core_store_pending() > 0);
	run_until(idle);
	for (i = 0; i < BURST; i++) {
		assert_true(out[i].done);
		assert_int_equal(out[i].status, 0);
		assert_int_equal(out[i].seq, i);	/* submission order */
	}
	print_message("%d units in %llu commits\n", BURST,
	    (unsigned long long)core_store_commits());
	assert_int_equal(core_store_units(), BURST);
	assert_true(core_store_commits() >= 1);
	assert_true(core_store_commits() < BURST);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM items"), BURST);
	assert_int_equal(count_rows("SELECT sum(n) FROM items"),
	    (sqlite3_int64)BURST * (BURST - 1) / 2);
	/* Closed: no more work taken. */
	assert_int_equal(insert("late", 1, &out[0]), -1);
}

/*
 * A unit whose second statement violates UNIQUE is rolled back alone
 * (its first insert is gone too); its neighbours in the group commit.
 * A slow unit in front keeps the writer busy so the rest queue up and
 * share one group.
 */
static void
test_failing_unit(void **state)
{
	struct outcome slow = {0}, a = {0}, b = {0}, c = {0};
	struct sales_value v[2];
	struct sales_store_stmt s[2];
	struct sales_store_stmt heavy = {
		"INSERT INTO big(x) WITH RECURSIVE c(x) AS (SELECT 1 UNION "
		"ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c",
		NULL, 0 };
	uint64_t commits;

	(void)state;
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_write(&heavy, 1, on_write, &slow), 0);
	assert_int_equal(insert("a", 1, &a), 0);
	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_TEXT;
	v[0].s = "b1";
	v[1].type = SALES_VALUE_TEXT;
	v[1].s = "a";		/* duplicate of unit a: UNIQUE fails */
	s[0].sql = "INSERT INTO items(name) VALUES (?1)";
	s[0].params = &v[0];
	s[0].nparams = 1;
	s[1].sql = "INSERT INTO items(name) VALUES (?1)";
	s[1].params = &v[1];
	s[1].nparams = 1;
	assert_int_equal(core_store_write(s, 2, on_write, &b), 0);
	assert_int_equal(insert("c", 3, &c), 0);
	run_until(idle);
	commits = core_store_commits();
	assert_int_equal(slow.status, 0);
	assert_int_equal(a.status, 0);
	assert_int_equal(b.status, -1);
	assert_int_equal(b.constraint, 1);
	assert_non_null(strstr(b.err, "UNIQUE"));
	assert_int_equal(c.status, 0);
	assert_int_equal(c.constraint, 0);
	assert_true(slow.seq < a.seq && a.seq < b.seq && b.seq < c.seq);
	assert_true(commits <= 2);
	assert_int_equal(core_store_units(), 3);
	assert_int_equal(core_store_writable(), 1);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM items"), 2);
	assert_int_equal(count_rows(
	    "SELECT count(*) FROM items WHERE name = 'b1'"), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM big"), 200000);
}

/*
 * Groups run first without savepoints and, when a unit fails, again
 * with one per unit (core/store.c).  Several failures of different kinds
 * in one group, a unit that builds on an earlier one of the group and a
 * unit that builds on a failed one: each outcome and the stored rows
 * must be what one savepoint per unit gives.
 */
static void
test_failures_in_one_group(void **state)
{
	struct outcome slow = {0}, o[7];
	struct sales_store_stmt heavy = {
		"INSERT INTO big(x) WITH RECURSIVE c(x) AS (SELECT 1 UNION "
		"ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c",
		NULL, 0 };
	struct sales_store_stmt bump = {
		"UPDATE items SET n = n + 10 WHERE name = 'g1'", NULL, 0 };
	struct sales_store_stmt bad = { "INSERT INTO nowhere VALUES (1)",
	    NULL, 0 };
	struct sales_store_stmt after_bad = {
		"INSERT INTO items(name, n) SELECT 'g5', n FROM items WHERE "
		"name = 'g1'", NULL, 0 };
	int i;

	(void)state;
	memset(o, 0, sizeof(o));
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_write(&heavy, 1, on_write, &slow), 0);
	assert_int_equal(insert("g1", 1, &o[0]), 0);
	assert_int_equal(insert("g1", 2, &o[1]), 0);		/* UNIQUE */
	assert_int_equal(core_store_write(&bump, 1, on_write, &o[2]), 0);
	assert_int_equal(core_store_write(&bad, 1, on_write, &o[3]), 0);
	assert_int_equal(core_store_write(&after_bad, 1, on_write, &o[4]),
	    0);
	assert_int_equal(insert("g5", 9, &o[5]), 0);		/* UNIQUE */
	assert_int_equal(insert("g7", 7, &o[6]), 0);
	run_until(idle);
	assert_int_equal(slow.status, 0);
	for (i = 0; i < 7; i++)
		assert_true(o[i].done);
	assert_int_equal(o[0].status, 0);
	assert_int_equal(o[1].status, -1);
	assert_int_equal(o[1].constraint, 1);
	assert_non_null(strstr(o[1].err, "UNIQUE"));
	assert_int_equal(o[2].status, 0);
	assert_int_equal(o[3].status, -1);
	assert_int_equal(o[3].constraint, 0);
	assert_non_null(strstr(o[3].err, "no such table"));
	assert_int_equal(o[4].status, 0);
	assert_int_equal(o[5].status, -1);
	assert_int_equal(o[5].constraint, 1);
	assert_int_equal(o[6].status, 0);
	for (i = 1; i < 7; i++)
		assert_true(o[i - 1].seq < o[i].seq);
	assert_int_equal(core_store_units(), 1 + 4);
	assert_int_equal(core_store_writable(), 1);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM items"), 3);
	assert_int_equal(count_rows("SELECT n FROM items WHERE name = 'g1'"),
	    11);
	assert_int_equal(count_rows("SELECT n FROM items WHERE name = 'g5'"),
	    11);
	assert_int_equal(count_rows("SELECT n FROM items WHERE name = 'g7'"),
	    7);
}

/*
 * A failed COMMIT (here a deferred foreign key) fails every unit of its
 * group and makes the store unwritable until a later commit succeeds.
 */
static void
test_commit_fails(void **state)
{
	struct outcome slow = {0}, a = {0}, b = {0}, c = {0};
	struct sales_store_stmt heavy = {
		"INSERT INTO big(x) WITH RECURSIVE c(x) AS (SELECT 1 UNION "
		"ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT x FROM c",
		NULL, 0 };
	struct sales_store_stmt orphan = {
		"INSERT INTO child(pid) VALUES (42)", NULL, 0 };

	(void)state;
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_write(&heavy, 1, on_write, &slow), 0);
	assert_int_equal(insert("a", 1, &a), 0);
	assert_int_equal(core_store_write(&orphan, 1, on_write, &b), 0);
	run_until(idle);
	assert_int_equal(b.status, -1);
	assert_int_equal(b.constraint, 0);
	assert_non_null(strstr(b.err, "commit failed"));
	assert_non_null(strstr(b.err, "FOREIGN KEY"));
	/* a shared b's group unless the writer took it alone first. */
	assert_true(a.status == -1 || core_store_units() >= 2);
	if (a.status == -1)
		assert_non_null(strstr(a.err, "commit failed"));
	assert_int_equal(core_store_writable(), 0);

	assert_int_equal(insert("c", 3, &c), 0);
	run_until(idle);
	assert_int_equal(c.status, 0);
	assert_int_equal(core_store_writable(), 1);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM child"), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM items WHERE "
	    "name = 'c'"), 1);
}

/* A bad statement is a unit failure, not a constraint one. */
static void
test_bad_sql(void **state)
{
	struct outcome o = {0}, p = {0};
	struct sales_value v = { .type = SALES_VALUE_INT, .i = 1 };
	struct sales_store_stmt s = { "INSERT INTO nowhere VALUES (1)", NULL,
	    0 };
	struct sales_store_stmt q = { "INSERT INTO items(name) VALUES (?1, ?2)",
	    &v, 1 };

	(void)state;
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_write(&s, 1, on_write, &o), 0);
	assert_int_equal(core_store_write(&q, 1, on_write, &p), 0);
	run_until(idle);
	assert_int_equal(o.status, -1);
	assert_int_equal(o.constraint, 0);
	assert_non_null(strstr(o.err, "no such table"));
	assert_int_equal(p.status, -1);
	assert_int_equal(core_store_writable(), 1);
	/* Refused outright. */
	assert_int_equal(core_store_write(NULL, 1, on_write, &o), -1);
	assert_int_equal(core_store_write(&s, 0, on_write, &o), -1);
	s.sql = NULL;
	assert_int_equal(core_store_write(&s, 1, on_write, &o), -1);
}

struct qstate {
	int	 done;
	char	 err[256];
	size_t	 rows;
	size_t	 cols;
	char	 name[64];
	int64_t	 n;
	double	 price;
	char	 blob[8];
	size_t	 bloblen;
	int	 null_n;
};

static void
on_query(const struct sales_store_result *res, const char *err, void *arg)
{
	struct qstate *q = arg;
	const struct sales_value *v;

	q->done = 1;
	if (err != NULL) {
		assert_null(res);
		snprintf(q->err, sizeof(q->err), "%s", err);
		return;
	}
	q->rows = core_store_rows(res);
	q->cols = core_store_cols(res);
	if (q->rows == 0)
		return;
	assert_int_equal(q->cols, 4);
	v = core_store_value(res, 0, 0);
	assert_int_equal(v->type, SALES_VALUE_TEXT);
	assert_int_equal(strlen(v->s), v->len);	/* NUL-terminated */
	snprintf(q->name, sizeof(q->name), "%s", v->s);
	v = core_store_value(res, 0, 1);
	if (v->type == SALES_VALUE_NULL)
		q->null_n = 1;
	else {
		assert_int_equal(v->type, SALES_VALUE_INT);
		q->n = v->i;
	}
	v = core_store_value(res, 0, 2);
	assert_int_equal(v->type, SALES_VALUE_REAL);
	q->price = v->d;
	v = core_store_value(res, 0, 3);
	assert_int_equal(v->type, SALES_VALUE_BLOB);
	assert_true(v->len <= sizeof(q->blob));
	memcpy(q->blob, v->s, v->len);
	q->bloblen = v->len;
	assert_null(core_store_value(res, q->rows, 0));
	assert_null(core_store_value(res, 0, 4));
}

/*
 * Parameters are copied at call time (the caller's buffers are scribbled
 * over before the writer runs) and rows come back as copies.
 */
static void
test_copies_and_queries(void **state)
{
	struct outcome o = {0};
	struct qstate q1, q2, q3;
	struct sales_value v[4], key;
	struct sales_store_stmt s;
	struct sales_store_result *res;
	char name[16], blob[4] = { 1, 0, 2, 3 };
	char *sql;

	(void)state;
	memset(&q1, 0, sizeof(q1));
	memset(&q2, 0, sizeof(q2));
	memset(&q3, 0, sizeof(q3));
	assert_int_equal(open_store(), 0);
	strcpy(name, "widget");
	sql = strdup("INSERT INTO items(name, n, price, data) "
	    "VALUES (?1, ?2, ?3, ?4)");
	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_TEXT;
	v[0].s = name;			/* len 0: NUL-terminated */
	v[1].type = SALES_VALUE_NULL;
	v[2].type = SALES_VALUE_REAL;
	v[2].d = 25.5;
	v[3].type = SALES_VALUE_BLOB;
	v[3].s = blob;
	v[3].len = sizeof(blob);
	s.sql = sql;
	s.params = v;
	s.nparams = 4;
	assert_int_equal(core_store_write(&s, 1, on_write, &o), 0);
	memset(name, 'X', sizeof(name) - 1);
	memset(blob, 0x7f, sizeof(blob));
	memset(sql, ' ', strlen(sql));
	free(sql);
	memset(v, 0xff, sizeof(v));
	run_until(idle);
	assert_int_equal(o.status, 0);

	memset(&key, 0, sizeof(key));
	key.type = SALES_VALUE_TEXT;
	key.s = "widget";
	key.len = 6;
	assert_int_equal(core_store_query("SELECT name, n, price, data FROM "
	    "items WHERE name = ?1", &key, 1, on_query, &q1), 0);
	assert_int_equal(core_store_query("SELECT name, n, price, data FROM "
	    "items WHERE name = 'none'", NULL, 0, on_query, &q2), 0);
	assert_int_equal(core_store_query("SELECT x FROM nowhere", NULL,
	    0, on_query, &q3), 0);
	run_until(idle);
	assert_true(q1.done && q2.done && q3.done);
	assert_int_equal(q1.rows, 1);
	assert_string_equal(q1.name, "widget");
	assert_int_equal(q1.null_n, 1);
	assert_true(q1.price == 25.5);
	assert_int_equal(q1.bloblen, 4);
	assert_memory_equal(q1.blob, "\1\0\2\3", 4);
	assert_int_equal(q2.rows, 0);
	assert_int_equal(q2.cols, 4);
	assert_non_null(strstr(q3.err, "no such table"));

	/* query_sync on the calling thread. */
	res = core_store_query_sync("SELECT count(*), max(price) FROM items",
	    NULL, 0);
	assert_non_null(res);
	assert_int_equal(core_store_rows(res), 1);
	assert_int_equal(core_store_cols(res), 2);
	assert_int_equal(core_store_value(res, 0, 0)->i, 1);
	assert_true(core_store_value(res, 0, 1)->d == 25.5);
	core_store_result_free(res);
	assert_null(core_store_query_sync("SELEKT 1", NULL, 0));
	/* Wrong parameter count is an error, not a silent NULL. */
	assert_null(core_store_query_sync("SELECT ?1, ?2", &key, 1));
	/* Queries are read-only. */
	assert_null(core_store_query_sync("DELETE FROM items", NULL, 0));
	/* Two statements in one text are refused. */
	assert_null(core_store_query_sync("SELECT 1; SELECT 2", NULL, 0));
	res = core_store_query_sync("SELECT 1;", NULL, 0);
	assert_non_null(res);
	core_store_result_free(res);
}

struct closing {
	int	 done;
	int	 ok;
	int	 refused;
	int	 order;
};

static void
on_close_write(int status, int constraint, const char *err, void *arg)
{
	struct closing *c = arg;
	struct sales_store_stmt s = { "SELECT 1", NULL, 0 };

	(void)constraint;
	(void)err;
	if (c->done != seq)
		c->order = 0;
	c->done++;
	seq++;
	c->ok += status == 0;
	/* Work submitted while closing is refused. */
	c->refused += core_store_write(&s, 1, NULL, NULL) == -1;
}

/* close finishes queued units and runs their callbacks before returning. */
static void
test_close_finishes(void **state)
{
	struct closing c = { 0, 0, 0, 1 };
	struct sales_value v = { .type = SALES_VALUE_INT };
	struct sales_store_stmt s = { "INSERT INTO big(x) VALUES (?1)", &v,
	    1 };
	int i;

	(void)state;
	assert_int_equal(open_store(), 0);
	for (i = 0; i < 500; i++) {
		v.i = i;
		assert_int_equal(core_store_write(&s, 1, on_close_write, &c),
		    0);
	}
	core_store_close();
	assert_int_equal(c.done, 500);
	assert_int_equal(c.ok, 500);
	assert_int_equal(c.refused, 500);
	assert_int_equal(c.order, 1);
	assert_int_equal(core_store_pending(), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM big"), 500);
}

static int
migrations_applied(void)
{
	return (int)count_rows("SELECT count(*) FROM schema_modules "
	    "WHERE module = 't'");
}

/* Re-opening applies nothing twice; a new file is applied on its own. */
static void
test_migrations_once(void **state)
{
	struct sales_store_result *res;

	(void)state;
	assert_int_equal(open_store(), 0);
	core_store_close();
	assert_int_equal(migrations_applied(), 2);
	assert_int_equal(open_store(), 0);
	core_store_close();
	assert_int_equal(migrations_applied(), 2);
	/* Would fail if 001 ran again: the table exists. */
	write_file(migdir, "010_more.sql",
	    "ALTER TABLE items ADD COLUMN note TEXT;\n");
	assert_int_equal(open_store(), 0);
	res = core_store_query_sync("SELECT version, name, applied_at FROM "
	    "schema_modules WHERE module = 't' ORDER BY version", NULL, 0);
	assert_non_null(res);
	assert_int_equal(core_store_rows(res), 3);
	assert_int_equal(core_store_value(res, 2, 0)->i, 10);
	assert_string_equal(core_store_value(res, 2, 1)->s, "010_more.sql");
	assert_int_equal(core_store_value(res, 2, 2)->type,
	    SALES_VALUE_TEXT);
	core_store_result_free(res);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM "
	    "pragma_table_info('items') WHERE name = 'note'"), 1);
	assert_int_equal(count_rows("SELECT count(*) FROM "
	    "pragma_journal_mode() WHERE journal_mode = 'wal'"), 1);
}

/* A broken file names itself and SQLite's complaint; nothing of it stays. */
static void
test_migration_broken(void **state)
{
	struct sales_store_driver_config cfg = { sizeof(cfg), dbpath, NULL, 0 };
	char err[512];
	void *conn;

	(void)state;
	write_file(migdir, "003_broken.sql",
	    "CREATE TABLE half (a INTEGER);\nCREATE TABLE oops (;\n");
	assert_int_equal(open_store(), -1);
	assert_int_equal(core_store_writable(), 0);
	conn = core_store_embedded.open(&cfg, 1, err, sizeof(err));
	assert_non_null(conn);
	err[0] = '\0';
	assert_int_equal(core_store_embedded.migrate(conn, "t", migdir, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "003_broken.sql"));
	assert_non_null(strstr(err, "syntax error"));
	core_store_embedded.close(conn);
	/* 001 and 002 went in; 003 left nothing behind. */
	assert_int_equal(migrations_applied(), 2);
	assert_int_equal(count_rows("SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'half'"), 0);

	/* A badly named file and a missing directory are errors too. */
	rm_rf(migdir);
	assert_int_equal(mkdir(migdir, 0755), 0);
	write_file(migdir, "first.sql", "SELECT 1;");
	conn = core_store_embedded.open(&cfg, 1, err, sizeof(err));
	assert_non_null(conn);
	assert_int_equal(core_store_embedded.migrate(conn, "t", migdir, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "first.sql"));
	/* A module without tables has no directory: nothing to apply. */
	assert_int_equal(core_store_embedded.migrate(conn, "t",
	    "/nonexistent/sql", err, sizeof(err)), 0);
	core_store_embedded.close(conn);
	rm_rf(migdir);
	assert_int_equal(open_store(), 0);
}

static void
test_bad_driver(void **state)
{
	struct core_store_config cfg = { .driver = "oracle", .path = dbpath,
	    .migrations = migdir };

	(void)state;
	assert_int_equal(core_store_open(&cfg), -1);
	assert_null(core_store_query_sync("SELECT 1", NULL, 0));
	assert_int_equal(core_store_query("SELECT 1", NULL, 0, on_query,
	    NULL), -1);
}

static int
writable(void)
{
	return core_store_writable();
}

static int
unwritable(void)
{
	return !core_store_writable();
}

/*
 * A failed commit makes the store unwritable with the reason as its
 * fault; the idle writer's probe heals it with no write submitted.
 */
static void
test_heals_without_write(void **state)
{
	struct outcome b = {0};
	struct sales_store_stmt orphan = {
		"INSERT INTO child(pid) VALUES (42)", NULL, 0 };
	char fault[1024];

	(void)state;
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_fault(fault, sizeof(fault)), 0);
	assert_int_equal(core_store_write(&orphan, 1, on_write, &b), 0);
	run_until(idle);
	assert_int_equal(b.status, -1);
	assert_int_equal(core_store_writable(), 0);
	assert_true(core_store_fault(fault, sizeof(fault)) > 0);
	assert_non_null(strstr(fault, "FOREIGN KEY"));
	run_until(writable);
	assert_int_equal(core_store_fault(fault, sizeof(fault)), 0);
	assert_int_equal(core_store_commits(), 0);
}

/*
 * The database moved away underneath: the idle writer notices before
 * any write, writes are refused (they would go to a file no path leads
 * to, lost at restart), the fault names the path.  Another file in its
 * place is "replaced".  The original moved back heals the store.
 */
static void
test_file_moved(void **state)
{
	struct outcome a = {0}, b = {0}, c = {0}, d = {0};
	char moved[320], fault[1024], dir[320], *slash;

	(void)state;
	assert_int_equal(open_store(), 0);
	assert_int_equal(insert("a", 1, &a), 0);
	run_until(idle);
	assert_int_equal(a.status, 0);
	snprintf(moved, sizeof(moved), "%s.moved", dbpath);
	assert_int_equal(rename(dbpath, moved), 0);
	run_until(unwritable);
	assert_true(core_store_fault(fault, sizeof(fault)) > 0);
	assert_non_null(strstr(fault, dbpath));
	assert_non_null(strstr(fault, "deleted or moved"));
	assert_int_equal(insert("b", 2, &b), 0);
	run_until(idle);
	assert_int_equal(b.status, -1);
	assert_non_null(strstr(b.err, "deleted or moved"));

	snprintf(dir, sizeof(dir), "%s", dbpath);
	slash = strrchr(dir, '/');
	*slash = '\0';
	write_file(dir, slash + 1, "another file");
	assert_int_equal(insert("c", 3, &c), 0);
	run_until(idle);
	assert_int_equal(c.status, -1);
	assert_non_null(strstr(c.err, "replaced"));
	assert_int_equal(core_store_writable(), 0);

	assert_int_equal(rename(moved, dbpath), 0);
	run_until(writable);
	assert_int_equal(core_store_fault(fault, sizeof(fault)), 0);
	assert_int_equal(insert("d", 4, &d), 0);
	run_until(idle);
	assert_int_equal(d.status, 0);
	core_store_close();
	assert_int_equal(count_rows("SELECT count(*) FROM items"), 2);
}

/*
 * A -wal without its database is refused: SQLite would replay it onto
 * a new empty file.  Without the -wal, a first run creates the file.
 */
static void
test_wal_without_database(void **state)
{
	struct sales_store_driver_config cfg = { sizeof(cfg), dbpath, NULL, 0 };
	char err[1024], dir[300];
	void *conn;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/db", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/db/lost.db", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(dir, "lost.db-wal", "frames of a database long gone");
	err[0] = '\0';
	assert_null(conn = core_store_embedded.open(&cfg, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "lost.db\" is missing"));
	assert_non_null(strstr(err, "lost.db-wal"));
	assert_int_equal(open_store(), -1);
	snprintf(err, sizeof(err), "%s-wal", dbpath);
	assert_int_equal(unlink(err), 0);
	assert_int_equal(open_store(), 0);
}

/* A file that is not a database is a clear start-up error. */
static void
test_not_a_database(void **state)
{
	struct sales_store_driver_config cfg = { sizeof(cfg), dbpath, NULL, 0 };
	char err[512], dir[300];
	void *conn;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/db", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/db/junk.db", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(dir, "junk.db", "this is not an SQLite database, not at "
	    "all, and it is long enough to have a header of sorts\n");
	assert_int_equal(open_store(), -1);
	err[0] = '\0';
	assert_null(conn = core_store_embedded.open(&cfg, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "junk.db"));
	assert_non_null(strstr(err, "not a database"));
	assert_non_null(strstr(err, "is not a valid SQLite database"));
}

/* A result built by hand: deep copies and growth past one chunk. */
static void
test_result_building(void **state)
{
	struct sales_store_result *res;
	struct sales_value row[2];
	char text[5000];
	size_t i;

	(void)state;
	assert_non_null(res = core_store_result_new(2));
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (i = 0; i < 100; i++) {
		memset(row, 0, sizeof(row));
		row[0].type = SALES_VALUE_INT;
		row[0].i = (int64_t)i;
		row[1].type = SALES_VALUE_TEXT;
		row[1].s = text;
		row[1].len = i * 50;
		assert_int_equal(core_store_result_add(res, row), 0);
	}
	text[0] = 'b';
	assert_int_equal(core_store_rows(res), 100);
	for (i = 0; i < 100; i++) {
		assert_int_equal(core_store_value(res, i, 0)->i, (int64_t)i);
		assert_int_equal(core_store_value(res, i, 1)->len, i * 50);
		assert_int_equal(strlen(core_store_value(res, i, 1)->s),
		    i * 50);
		if (i > 0)
			assert_int_equal(core_store_value(res, i, 1)->s[0],
			    'a');
	}
	core_store_result_free(res);
	core_store_result_free(NULL);
	assert_int_equal(core_store_rows(NULL), 0);
}

/* store_write_rows: each unit's returned ids, or NULL rows on failure. */
struct rows_outcome {
	int		 done;
	int		 status;
	int		 seq;
	size_t		 n;
	long long	 id;		/* statement 0's first row */
	size_t		 rows1;		/* rows of statement 1 */
	int		 null1;		/* statement 1 gave NULL */
	int		 rows_null;
};

static void
on_rows(int status, int constraint, const char *err,
    const struct sales_store_result *const *rows, size_t n, void *arg)
{
	struct rows_outcome *o = arg;
	const struct sales_value *v;

	(void)constraint;
	(void)err;
	o->done = 1;
	o->status = status;
	o->seq = seq++;
	o->n = n;
	o->rows_null = rows == NULL;
	if (rows == NULL)
		return;
	v = core_store_value(rows[0], 0, 0);
	o->id = v != NULL && v->type == SALES_VALUE_INT ? v->i : -1;
	o->rows1 = core_store_rows(rows[1]);
	o->null1 = rows[1] == NULL;
}

static int
insert_rows(const char *name, struct rows_outcome *o)
{
	struct sales_value v[1];
	struct sales_store_stmt s[2];

	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_TEXT;
	v[0].s = name;
	s[0].sql = "INSERT INTO items(id, name) VALUES ((SELECT "
	    "COALESCE(MAX(id), 0) + 1 FROM items), ?1) RETURNING id";
	s[0].params = v;
	s[0].nparams = 1;
	s[1].sql = "INSERT INTO big(x) VALUES (1)";
	s[1].params = NULL;
	s[1].nparams = 0;
	return core_store_write_rows(s, 2, on_rows, o);
}

/*
 * Ids chosen by the database come back to each unit, in commit order,
 * also when a failing unit (a duplicate name) makes the group run again
 * with savepoints: the rows of the first try are not kept.
 */
static void
test_write_rows(void **state)
{
	static struct rows_outcome out[200];
	char name[32];
	long long want = 1;
	int i;

	(void)state;
	memset(out, 0, sizeof(out));
	assert_int_equal(open_store(), 0);
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "r-%d", i % 50 == 49 ? 0 : i);
		assert_int_equal(insert_rows(name, &out[i]), 0);
	}
	run_until(idle);
	for (i = 0; i < 200; i++) {
		assert_true(out[i].done);
		assert_int_equal(out[i].seq, i);
		assert_int_equal(out[i].n, 2);
		if (i % 50 == 49) {
			assert_int_equal(out[i].status, -1);
			assert_true(out[i].rows_null);
			continue;
		}
		assert_int_equal(out[i].status, 0);
		assert_int_equal(out[i].id, want++);
		assert_int_equal(out[i].rows1, 0);
	}
	assert_int_equal(core_store_write_rows(NULL, 0, on_rows, NULL), -1);
	core_store_close();
	assert_int_equal(count_rows("SELECT max(id) FROM items"), want - 1);
	assert_int_equal(count_rows("SELECT count(*) FROM items"), want - 1);
}

static int	watch_calls, watch_others, watch_seen_all;
static struct outcome watch_out[300];

static void
on_watch(int others, void *arg)
{
	int i;

	watch_calls++;
	watch_others += others;
	/* Called after the callbacks of the commits it tells of. */
	for (i = 0; i < 300 && watch_out[i].done; i++)
		;
	if (i == *(int *)arg)
		watch_seen_all = 1;
}

static int
watch_quiet(void)
{
	return idle() && watch_seen_all;
}

/*
 * The embedded driver: one call after start-up (others), then calls
 * after commits (not others), coalesced; none for a group that stored
 * nothing; none once forgotten.
 */
static void
test_watch(void **state)
{
	struct outcome bad;
	char name[32];
	int total = 300, i, calls;

	(void)state;
	memset(watch_out, 0, sizeof(watch_out));
	watch_calls = watch_others = watch_seen_all = 0;
	assert_int_equal(open_store(), 0);
	assert_int_equal(core_store_watch("t", NULL, NULL), -1);
	assert_int_equal(core_store_watch("t", on_watch, &total), 0);
	assert_int_equal(watch_calls, 0);	/* on the loop only */
	event_base_loop(core_base, EVLOOP_NONBLOCK);
	assert_int_equal(watch_calls, 1);
	assert_int_equal(watch_others, 1);
	for (i = 0; i < total; i++) {
		snprintf(name, sizeof(name), "w-%d", i);
		assert_int_equal(insert(name, i, &watch_out[i]), 0);
	}
	run_until(watch_quiet);
	assert_true(watch_calls >= 2);
	assert_true((uint64_t)watch_calls - 1 <= core_store_commits());
	assert_int_equal(watch_others, 1);
	/* A group that stored nothing tells nobody. */
	calls = watch_calls;
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(insert("w-0", 0, &bad), 0);
	run_until(idle);
	assert_int_equal(bad.status, -1);
	event_base_loop(core_base, EVLOOP_NONBLOCK);
	assert_int_equal(watch_calls, calls);
	core_store_forget("t");
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(insert("w-new", 0, &bad), 0);
	run_until(idle);
	event_base_loop(core_base, EVLOOP_NONBLOCK);
	assert_int_equal(watch_calls, calls);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failing_unit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_sql, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_in_one_group,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_copies_and_queries, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_finishes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migrations_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migration_broken, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_driver, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_heals_without_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_moved, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wal_without_database,
		    setup, teardown),
		cmocka_unit_test(test_result_building),
		cmocka_unit_test_setup_teardown(test_write_rows, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
