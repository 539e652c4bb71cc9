/*
 * kit_store.c - storage on a private in-memory SQLite database.
 *
 * store_write and store_query copy their SQL and parameters and run when
 * the loop does, one unit per SAVEPOINT (a failing unit is rolled back
 * alone), calling back right after; store_query_sync runs at once and
 * only inside init, as the core's.  One statement per SQL text, ?1, ?2
 * parameters, results NUL-terminated: the contract of <sales/store.h>,
 * without the threads, group commit or durability it needs in the
 * server.
 *
 * store_write_rows hands each statement's rows to its callback.
 * store_watch's watchers are called after every unit that committed
 * (others 0) and once when the loop first runs (others 1), coalesced
 * as the core does: one call for the commits the loop ran in a row.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "kit.h"
#include "log.h"

struct sales_store_result {
	size_t			 ncols, nrows, cap;
	struct sales_value	*vals;
};

struct kit_stmt {
	char			*sql;
	struct sales_value	*params;
	size_t			 nparams;
};

struct kit_store_job {
	struct kit_job		 job;
	struct kit_stmt		*stmts;
	size_t			 n;
	sales_store_write_cb	 wcb;
	sales_store_rows_cb	 rcb;
	sales_store_query_cb	 qcb;
	void			*arg;
};

struct kit_watcher {
	struct kit_watcher	*next;
	struct sales_module	*owner;
	sales_store_watch_cb	 cb;
	void			*arg;
};

static struct kit_watcher	*kit_watchers;
static int			 kit_watch_flags;	/* 1 own, 2 others */
static int			 kit_watch_queued;

static void	kit_watch_post(int flags);

int
kit_store_open(void)
{
	if (sqlite3_open(":memory:", &kit_cur->db) != SQLITE_OK) {
		core_log("kit", SALES_LOG_ERROR, "cannot open an in-memory "
		    "SQLite database");
		return -1;
	}
	return 0;
}

void
kit_store_close(void)
{
	struct kit_watcher *w;

	while ((w = kit_watchers) != NULL) {
		kit_watchers = w->next;
		free(w);
	}
	kit_watch_flags = kit_watch_queued = 0;
	sqlite3_close(kit_cur->db);
	kit_cur->db = NULL;
}

void
kit_store_result_free(struct sales_store_result *res)
{
	size_t i;

	if (res == NULL)
		return;
	for (i = 0; i < res->nrows * res->ncols; i++)
		free((char *)res->vals[i].s);
	free(res->vals);
	free(res);
}

size_t
kit_store_rows(const struct sales_store_result *res)
{
	return res ? res->nrows : 0;
}

size_t
kit_store_cols(const struct sales_store_result *res)
{
	return res ? res->ncols : 0;
}

const struct sales_value *
kit_store_value(const struct sales_store_result *res, size_t row, size_t col)
{
	if (res == NULL || row >= res->nrows || col >= res->ncols)
		return NULL;
	return &res->vals[row * res->ncols + col];
}

static int
kit_row(struct sales_store_result *res, sqlite3_stmt *st)
{
	struct sales_value *v;
	size_t c, cap;
	const void *p;

	if (res->nrows == res->cap) {
		cap = res->cap ? res->cap * 2 : 8;
		if ((v = realloc(res->vals, cap * res->ncols *
		    sizeof(*v))) == NULL)
			return -1;
		res->vals = v;
		res->cap = cap;
	}
	v = &res->vals[res->nrows * res->ncols];
	memset(v, 0, res->ncols * sizeof(*v));
	res->nrows++;		/* freed with what is filled so far */
	for (c = 0; c < res->ncols; c++) {
		switch (sqlite3_column_type(st, (int)c)) {
		case SQLITE_INTEGER:
			v[c].type = SALES_VALUE_INT;
			v[c].i = sqlite3_column_int64(st, (int)c);
			break;
		case SQLITE_FLOAT:
			v[c].type = SALES_VALUE_REAL;
			v[c].d = sqlite3_column_double(st, (int)c);
			break;
		case SQLITE_TEXT:
		case SQLITE_BLOB:
			v[c].type = sqlite3_column_type(st, (int)c) ==
			    SQLITE_TEXT ? SALES_VALUE_TEXT : SALES_VALUE_BLOB;
			p = sqlite3_column_blob(st, (int)c);
			v[c].len = (size_t)sqlite3_column_bytes(st, (int)c);
			if ((v[c].s = kit_memdup(p ? p : "", v[c].len)) == NULL)
				return -1;
			break;
		default:
			v[c].type = SALES_VALUE_NULL;
		}
	}
	return 0;
}

static int
kit_bind(sqlite3_stmt *st, const struct sales_value *p, size_t n)
{
	size_t i;
	int rc = SQLITE_OK, k;

	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		k = (int)i + 1;
		switch (p[i].type) {
		case SALES_VALUE_INT:
			rc = sqlite3_bind_int64(st, k, p[i].i);
			break;
		case SALES_VALUE_REAL:
			rc = sqlite3_bind_double(st, k, p[i].d);
			break;
		case SALES_VALUE_TEXT:
			rc = sqlite3_bind_text(st, k, p[i].s ? p[i].s : "",
			    (int)p[i].len, SQLITE_TRANSIENT);
			break;
		case SALES_VALUE_BLOB:
			rc = sqlite3_bind_blob(st, k, p[i].s ? p[i].s : "",
			    (int)p[i].len, SQLITE_TRANSIENT);
			break;
		default:
			rc = sqlite3_bind_null(st, k);
		}
	}
	return rc == SQLITE_OK ? 0 : -1;
}

/* One statement; rows into *res when res is not NULL. */
static int
kit_exec(const struct kit_stmt *s, struct sales_store_result **res,
    int *constraint, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	int rc;

	*constraint = 0;
	if (res != NULL)
		*res = NULL;
	if (sqlite3_prepare_v2(kit_cur->db, s->sql, -1, &st, &tail) !=
	    SQLITE_OK || st == NULL) {
		snprintf(err, errlen, "%s", st ? sqlite3_errmsg(kit_cur->db) :
		    sqlite3_errmsg(kit_cur->db));
		sqlite3_finalize(st);
		return -1;
	}
	tail += strspn(tail, " \t\r\n;");
	if (*tail != '\0') {
		snprintf(err, errlen, "one statement per call");
		goto fail;
	}
	if (kit_bind(st, s->params, s->nparams) == -1) {
		snprintf(err, errlen, "bind: %s", sqlite3_errmsg(kit_cur->db));
		goto fail;
	}
	if (res != NULL) {
		if ((*res = calloc(1, sizeof(**res))) == NULL)
			goto nomem;
		(*res)->ncols = (size_t)sqlite3_column_count(st);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (res != NULL && (*res)->ncols > 0 && kit_row(*res, st) == -1)
			goto nomem;
	if (rc != SQLITE_DONE) {
		*constraint = (sqlite3_extended_errcode(kit_cur->db) & 0xff) ==
		    SQLITE_CONSTRAINT;
		snprintf(err, errlen, "%s", sqlite3_errmsg(kit_cur->db));
		goto fail;
	}
	sqlite3_finalize(st);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	sqlite3_finalize(st);
	if (res != NULL) {
		kit_store_result_free(*res);
		*res = NULL;
	}
	return -1;
}

/* Copies of the caller's SQL and parameters (<sales/store.h>). */
static int
kit_stmt_copy(struct kit_stmt *d, const char *sql,
    const struct sales_value *p, size_t n)
{
	size_t i, len;

	memset(d, 0, sizeof(*d));
	if (sql == NULL || (n > 0 && p == NULL) ||
	    (d->sql = kit_strdup(sql)) == NULL ||
	    (n > 0 && (d->params = calloc(n, sizeof(*p))) == NULL))
		return -1;
	d->nparams = n;
	for (i = 0; i < n; i++) {
		d->params[i] = p[i];
		d->params[i].s = NULL;
		if (p[i].type != SALES_VALUE_TEXT &&
		    p[i].type != SALES_VALUE_BLOB)
			continue;
		len = p[i].len;
		if (p[i].type == SALES_VALUE_TEXT && p[i].s && len == 0)
			len = strlen(p[i].s);
		d->params[i].len = len;
		if ((d->params[i].s = kit_memdup(p[i].s ? p[i].s : "",
		    len)) == NULL)
			return -1;
	}
	return 0;
}

static void
kit_stmt_free(struct kit_stmt *s)
{
	size_t i;

	for (i = 0; i < s->nparams; i++)
		free((char *)s->params[i].s);
	free(s->params);
	free(s->sql);
}

static void
kit_store_job_free(struct kit_job *job)
{
	struct kit_store_job *j = (struct kit_store_job *)job;
	size_t i;

	for (i = 0; i < j->n; i++)
		kit_stmt_free(&j->stmts[i]);
	free(j->stmts);
	free(j);
}

/* A failure the test asked for with sales_kit_store_fail(). */
static int
kit_injected(void)
{
	if (kit_cur->store_fail <= 0)
		return 0;
	kit_cur->store_fail--;
	return 1;
}

static void
kit_run_write(struct kit_job *job)
{
	struct kit_store_job *j = (struct kit_store_job *)job;
	struct sales_store_result **rows = NULL;
	char err[256];
	int constraint = 0, rc = 0;
	size_t i;

	if (kit_injected()) {
		if (j->wcb)
			j->wcb(-1, 0, kit_cur->store_err, j->arg);
		if (j->rcb)
			j->rcb(-1, 0, kit_cur->store_err, NULL, j->n, j->arg);
		return;
	}
	if (j->rcb != NULL && (rows = calloc(j->n, sizeof(*rows))) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		j->rcb(-1, 0, err, NULL, j->n, j->arg);
		return;
	}
	sqlite3_exec(kit_cur->db, "SAVEPOINT kit_unit", NULL, NULL, NULL);
	for (i = 0; i < j->n && rc == 0; i++)
		rc = kit_exec(&j->stmts[i], rows ? &rows[i] : NULL,
		    &constraint, err, sizeof(err));
	if (rc == -1)
		sqlite3_exec(kit_cur->db, "ROLLBACK TO kit_unit", NULL, NULL,
		    NULL);
	sqlite3_exec(kit_cur->db, "RELEASE kit_unit", NULL, NULL, NULL);
	if (j->wcb)
		j->wcb(rc, constraint, rc ? err : NULL, j->arg);
	if (j->rcb)
		j->rcb(rc, constraint, rc ? err : NULL, rc ? NULL :
		    (const struct sales_store_result *const *)rows, j->n,
		    j->arg);
	for (i = 0; rows != NULL && i < j->n; i++)
		kit_store_result_free(rows[i]);
	free(rows);
	if (rc == 0)
		kit_watch_post(1);
}

static void
kit_run_query(struct kit_job *job)
{
	struct kit_store_job *j = (struct kit_store_job *)job;
	struct sales_store_result *res;
	char err[256];
	int constraint;

	if (kit_injected()) {
		j->qcb(NULL, kit_cur->store_err, j->arg);
		return;
	}
	if (kit_exec(&j->stmts[0], &res, &constraint, err, sizeof(err)) == -1)
		j->qcb(NULL, err, j->arg);
	else
		j->qcb(res, NULL, j->arg);
	kit_store_result_free(res);
}

static struct kit_store_job *
kit_store_job(size_t n)
{
	struct kit_store_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	if ((j->stmts = calloc(n, sizeof(*j->stmts))) == NULL) {
		free(j);
		return NULL;
	}
	j->n = n;
	j->job.free = kit_store_job_free;
	j->job.owner = kit_who();
	return j;
}

/* A write job of copies of stmts, or NULL. */
static struct kit_store_job *
kit_write_job(const struct sales_store_stmt *stmts, size_t n)
{
	struct kit_store_job *j;
	size_t i;

	if (stmts == NULL || n == 0 || (j = kit_store_job(n)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (kit_stmt_copy(&j->stmts[i], stmts[i].sql, stmts[i].params,
		    stmts[i].nparams) == -1) {
			kit_store_job_free(&j->job);
			return NULL;
		}
	j->job.run = kit_run_write;
	return j;
}

int
kit_store_write(const struct sales_store_stmt *stmts, size_t n,
    sales_store_write_cb cb, void *arg)
{
	struct kit_store_job *j;

	if ((j = kit_write_job(stmts, n)) == NULL)
		return -1;
	j->wcb = cb;
	j->arg = arg;
	kit_queue(&j->job);
	return 0;
}

int
kit_store_write_rows(const struct sales_store_stmt *stmts, size_t n,
    sales_store_rows_cb cb, void *arg)
{
	struct kit_store_job *j;

	if ((j = kit_write_job(stmts, n)) == NULL)
		return -1;
	j->rcb = cb;
	j->arg = arg;
	kit_queue(&j->job);
	return 0;
}

static void
kit_watch_run(struct kit_job *job)
{
	struct kit_watcher *w;
	struct sales_module *prev;
	int flags = kit_watch_flags;

	(void)job;
	kit_watch_flags = kit_watch_queued = 0;
	for (w = kit_watchers; w != NULL && flags; w = w->next) {
		prev = kit_enter(w->owner);
		w->cb((flags & 2) != 0, w->arg);
		kit_leave(prev);
	}
}

static void
kit_watch_free(struct kit_job *job)
{
	free(job);
}

/* One queued call for every post until it runs. */
static void
kit_watch_post(int flags)
{
	struct kit_job *job;

	kit_watch_flags |= flags;
	if (kit_watch_queued || kit_watchers == NULL ||
	    (job = calloc(1, sizeof(*job))) == NULL)
		return;
	job->run = kit_watch_run;
	job->free = kit_watch_free;
	kit_watch_queued = 1;
	kit_queue(job);
}

int
kit_store_watch(struct sales_module *self, sales_store_watch_cb cb,
    void *arg)
{
	struct kit_watcher *w, **pp;

	if (!kit_in_init(self, "store_watch"))
		return -1;
	if (cb == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->owner = self;
	w->cb = cb;
	w->arg = arg;
	for (pp = &kit_watchers; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	kit_watch_post(2);
	return 0;
}

int
kit_store_query(const char *sql, const struct sales_value *params,
    size_t nparams, sales_store_query_cb cb, void *arg)
{
	struct kit_store_job *j;

	if (sql == NULL || cb == NULL || (j = kit_store_job(1)) == NULL)
		return -1;
	if (kit_stmt_copy(&j->stmts[0], sql, params, nparams) == -1) {
		kit_store_job_free(&j->job);
		return -1;
	}
	j->job.run = kit_run_query;
	j->qcb = cb;
	j->arg = arg;
	kit_queue(&j->job);
	return 0;
}

struct sales_store_result *
kit_store_query_sync(const char *sql, const struct sales_value *params,
    size_t nparams)
{
	struct sales_store_result *res = NULL;
	struct kit_stmt s;
	char err[256];
	int constraint;

	if (kit_cur->in_init == NULL) {
		core_log(kit_who_name(), SALES_LOG_ERROR, "store_query_sync "
		    "outside sales_module_init is not allowed (it blocks the "
		    "loop); use store_query");
		return NULL;
	}
	if (kit_injected()) {
		core_log("store", SALES_LOG_ERROR, "query \"%s\": %s",
		    sql ? sql : "", kit_cur->store_err);
		return NULL;
	}
	if (kit_stmt_copy(&s, sql, params, nparams) == -1 ||
	    kit_exec(&s, &res, &constraint, err, sizeof(err)) == -1) {
		if (s.sql == NULL)
			snprintf(err, sizeof(err), "no SQL or out of memory");
		core_log("store", SALES_LOG_ERROR, "query \"%s\": %s",
		    sql ? sql : "", err);
		res = NULL;
	}
	kit_stmt_free(&s);
	return res;
}

void
sales_kit_store_fail(struct sales_kit *kit, int n, const char *err)
{
	kit->store_fail = n;
	snprintf(kit->store_err, sizeof(kit->store_err), "%s",
	    err ? err : "disk I/O error");
}

int
sales_kit_sql(struct sales_kit *kit, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(kit->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		core_log("kit", SALES_LOG_ERROR, "sql: %s", err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

long long
sales_kit_sql_int(struct sales_kit *kit, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(kit->db, sql, -1, &st, NULL) != SQLITE_OK) {
		core_log("kit", SALES_LOG_ERROR, "sql: %s",
		    sqlite3_errmsg(kit->db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
kit_is_sql(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && strcmp(d->d_name + n - 4, ".sql") == 0;
}

int
sales_kit_migrate(struct sales_kit *kit, const char *dir)
{
	struct dirent **names;
	struct sales_buf text = {0};
	char path[4096], chunk[4096];
	FILE *f;
	size_t got;
	int i, n, rc = 0;

	if ((n = scandir(dir, &names, kit_is_sql, alphasort)) < 0) {
		core_log("kit", SALES_LOG_ERROR, "migrations \"%s\": cannot "
		    "read the folder", dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		text.len = 0;
		if (rc == 0 && (f = fopen(path, "r")) != NULL) {
			while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
				core_buf_append(&text, chunk, got);
			fclose(f);
			if (sales_kit_sql(kit, text.data ? text.data :
			    "") == -1) {
				core_log("kit", SALES_LOG_ERROR, "migration "
				    "\"%s\" failed (see above)", path);
				rc = -1;
			}
		} else if (rc == 0) {
			core_log("kit", SALES_LOG_ERROR, "cannot read \"%s\"",
			    path);
			rc = -1;
		}
		free(names[i]);
	}
	free(names);
	core_buf_free(&text);
	return rc;
}
