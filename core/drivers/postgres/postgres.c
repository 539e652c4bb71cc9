/*
 * postgres.c - the PostgreSQL storage driver (a shared object the core
 * loads only when [storage] driver = postgres, so libpq is loaded only
 * then): connections from [storage] url, statements prepared once per
 * connection and executed with their parameters as text, transactions
 * and savepoints for the core's group commit, results, and health.
 *
 * Each connection is used by one thread at a time (the core sees to
 * it) and libpq is called in its blocking form: those threads are the
 * core's storage threads, never the loop.  Durability: the writer's
 * session has synchronous_commit on, so COMMIT returns only once the
 * server has flushed the group; the core answers 201 only then.
 *
 * A lost connection is a storage fault: check() reconnects (at most
 * once a second) and statements are prepared again on the new session.
 * It does not decide when to commit or which thread runs what: that is
 * the core's store.c.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "postgres.h"

#define PG_CACHE_MAX	1024	/* statements kept per connection */
#define PG_RESET_MS	1000	/* reconnect attempts, at most */
#define PG_IDLE_MS	1000	/* an idle connection is pinged by check */
#define PG_LISTEN_IDLE_MS 5000	/* a silent listener is pinged */


/* Type oids (pg_type.h, stable across versions). */
#define OID_BOOL	16
#define OID_BYTEA	17
#define OID_INT8	20
#define OID_INT2	21
#define OID_INT4	23
#define OID_OID		26
#define OID_FLOAT4	700
#define OID_FLOAT8	701
#define OID_NUMERIC	1700

const struct sales_store_host *pg_host;
static int		 check_refs;	/* --check connections open */
static char		 pg_token[96];	/* this process, in notifications */
static char		 pg_notify[160];	/* NOTIFY ...; COMMIT */

static uint64_t
pg_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/*
 * libpq's message on one line: its newlines and tabs folded, and the
 * url's password masked wherever it quotes it.
 */
static void
pg_msg(const char *m, char *out, size_t outlen)
{
	size_t n = 0;
	int blank = 0;

	if (m == NULL || *m == '\0')
		m = "unknown error";
	for (; *m != '\0' && n + 1 < outlen; m++) {
		if (*m == '\n' || *m == '\t' || *m == ' ') {
			blank = n > 0;
			continue;
		}
		if (blank && n + 2 < outlen)
			out[n++] = ' ';
		blank = 0;
		out[n++] = *m;
	}
	out[n] = '\0';
	pg_secret_hide(out, outlen);
}

/*
 * A failed statement: the server's message, or for a connection that
 * is gone, what that means and that it heals by itself.
 */
void
pg_result_error(struct pg_conn *c, PGresult *r, char *err, size_t errlen)
{
	char m[768];

	if (PQstatus(c->pg) == CONNECTION_BAD) {
		pg_msg(PQerrorMessage(c->pg), m, sizeof(m));
		snprintf(err, errlen, "database \"%s\": connection lost (%s); "
		    "salesd reconnects by itself when the server is back",
		    c->where, m);
		return;
	}
	/* The primary message: one line, without "ERROR:" and the caret. */
	if (r != NULL && PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY))
		pg_msg(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), m,
		    sizeof(m));
	else
		pg_msg(r != NULL ? PQresultErrorMessage(r) :
		    PQerrorMessage(c->pg), m, sizeof(m));
	snprintf(err, errlen, "%s%s", m, strstr(m, "does not exist") &&
	    strstr(m, "relation") ? " (are the migrations applied?)" : "");
}

/* Runs a fixed, parameterless command; err may be NULL. */
int
pg_simple(struct pg_conn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r;
	ExecStatusType s;

	c->last_used = pg_host->mono_ms();
	r = PQexec(c->pg, sql);
	s = PQresultStatus(r);
	/* A migration of comments only is an empty query. */
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_EMPTY_QUERY) {
		PQclear(r);
		return 0;
	}
	if (err != NULL)
		pg_result_error(c, r, err, errlen);
	PQclear(r);
	return -1;
}

/* Notices (CREATE ... IF NOT EXISTS skipping, say) are no news. */
static void
pg_notice(void *arg, const char *message)
{
	char m[768];

	(void)arg;
	pg_msg(message, m, sizeof(m));
	pg_host->log(SALES_LOG_DEBUG, "postgres: %s", m);
}

/*
 * Connects with [storage] url (a postgresql:// URL or key=value
 * string).  The url is never repeated in a message and its password
 * is masked in libpq's (postgres_secret.c).  A connect timeout applies
 * unless the url sets one.
 */
PGconn *
pg_connect(const struct sales_store_driver_config *cfg, char *err,
    size_t errlen)
{
	const char *keys[4], *vals[4];
	PQconninfoOption *opts;
	char m[768], *perr = NULL;
	PGconn *pg;
	int n = 0;

	if (cfg->url == NULL || *cfg->url == '\0') {
		snprintf(err, errlen, "storage driver \"postgres\": [storage] "
		    "url is not set; give url = postgresql://user@host/db "
		    "(or url = ${DATABASE_URL})");
		return NULL;
	}
	pg_secret_url(cfg->url);
	/* libpq's parse errors quote the url: see pg_secret_parse_error. */
	if ((opts = PQconninfoParse(cfg->url, &perr)) == NULL) {
		pg_msg(perr != NULL ? perr : "out of memory", m, sizeof(m));
		PQfreemem(perr);
		pg_secret_parse_error(m, sizeof(m), cfg->url);
		snprintf(err, errlen, "cannot connect to PostgreSQL ([storage] "
		    "url): %s; give url = postgresql://user:password@host/db "
		    "or a key=value string", m);
		return NULL;
	}
	PQconninfoFree(opts);
	keys[n] = "dbname";
	vals[n++] = cfg->url;
	keys[n] = "fallback_application_name";
	vals[n++] = "salesd";
	if (strstr(cfg->url, "connect_timeout") == NULL) {
		keys[n] = "connect_timeout";
		vals[n++] = "5";
	}
	keys[n] = vals[n] = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		pg_msg(pg != NULL ? PQerrorMessage(pg) : "out of memory", m,
		    sizeof(m));
		snprintf(err, errlen, "cannot connect to PostgreSQL ([storage] "
		    "url): %s; check that the server runs and the url, user "
		    "and password are right", m);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, pg_notice, NULL);
	return pg;
}

void
pg_forget(struct pg_conn *c)
{
	struct pg_prep *p, *next;
	size_t i;

	for (i = 0; i < PG_BUCKETS; i++) {
		for (p = c->bucket[i]; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
		c->bucket[i] = NULL;
	}
	c->nprep = 0;
}

/*
 * The session: UTC, UTF-8, and for the writer synchronous commits
 * whatever the server's default, for the readers read-only.
 */
int
pg_session(struct pg_conn *c, char *err, size_t errlen)
{
	char sql[256];

	snprintf(c->where, sizeof(c->where), "%s:%s/%s", PQhost(c->pg),
	    PQport(c->pg), PQdb(c->pg));
	pg_secret_hide(c->where, sizeof(c->where));	/* in every message */
	if (pg_simple(c, "SET client_encoding = 'UTF8'", err, errlen) == -1 ||
	    pg_simple(c, "SET TimeZone = 'UTC'", err, errlen) == -1)
		return -1;
	if (c->writer && pg_simple(c, "SET synchronous_commit = on", err,
	    errlen) == -1)
		return -1;
	if (!c->writer && c->schema[0] == '\0' && pg_simple(c,
	    "SET default_transaction_read_only = on", err, errlen) == -1)
		return -1;
	if (c->schema[0] != '\0') {
		snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s; "
		    "SET search_path = %s", c->schema, c->schema);
		if (pg_simple(c, sql, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static void
pg_close(void *conn)
{
	struct pg_conn *c = conn;
	char sql[128];

	if (c == NULL)
		return;
	/* The last --check connection takes its private schema along. */
	if (c->schema[0] != '\0' && __atomic_sub_fetch(&check_refs, 1,
	    __ATOMIC_SEQ_CST) == 0 && PQstatus(c->pg) == CONNECTION_OK) {
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE",
		    c->schema);
		(void)pg_simple(c, sql, NULL, 0);
	}
	pg_forget(c);
	PQfinish(c->pg);
	free(c);
}

static void *
pg_open(const struct sales_store_driver_config *cfg, int writer, char *err,
    size_t errlen)
{
	struct pg_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->writer = writer;
	/*
	 * --check: the modules initialise on an empty schema of this
	 * process's own, dropped when the last connection closes.
	 */
	if (cfg->check) {
		snprintf(c->schema, sizeof(c->schema), "salesd_check_%ld",
		    (long)getpid());
		__atomic_add_fetch(&check_refs, 1, __ATOMIC_SEQ_CST);
	}
	if ((c->pg = pg_connect(cfg, err, errlen)) == NULL ||
	    pg_session(c, err, errlen) == -1) {
		pg_close(c);
		return NULL;
	}
	return c;
}

/*
 * The prepared statement for sql, preparing it (translated) on first
 * use.  Past PG_CACHE_MAX statements, *transient is set and the
 * unnamed statement is used: the caller frees the entry.
 */
struct pg_prep *
pg_prepare(struct pg_conn *c, const char *sql, int *transient, char *err,
    size_t errlen)
{
	struct pg_prep *p;
	PGresult *r;
	size_t len = strlen(sql);
	uint64_t h = pg_hash(sql, len);
	char *text;

	*transient = 0;
	for (p = c->bucket[h % PG_BUCKETS]; p != NULL; p = p->next)
		if (p->hash == h && p->len == len &&
		    memcmp(p->sql, sql, len) == 0)
			return p;
	if ((text = pg_translate(c, sql, err, errlen)) == NULL)
		return NULL;
	if ((p = calloc(1, sizeof(*p) + len + 1)) == NULL) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->hash = h;
	p->len = len;
	memcpy(p->sql, sql, len + 1);
	*transient = c->nprep >= PG_CACHE_MAX;
	if (!*transient)
		snprintf(p->name, sizeof(p->name), "s%lu", ++c->seq);
	r = PQprepare(c->pg, p->name, text, 0, NULL);
	free(text);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	/* Its parameter count, once, to refuse a wrong call as SQLite does. */
	r = PQdescribePrepared(c->pg, p->name);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	p->nparams = PQnparams(r);
	PQclear(r);
	if (!*transient) {
		p->next = c->bucket[h % PG_BUCKETS];
		c->bucket[h % PG_BUCKETS] = p;
		c->nprep++;
	}
	return p;
fail:
	pg_result_error(c, r, err, errlen);
	PQclear(r);
	free(p);
	return NULL;
}

/* One column of a row, from its text form, by its type. */
static int
pg_value(PGresult *r, int row, int col, struct sales_value *v,
    unsigned char **blob)
{
	const char *s = PQgetvalue(r, row, col);
	char *end;
	size_t n;

	memset(v, 0, sizeof(*v));
	if (PQgetisnull(r, row, col)) {
		v->type = SALES_VALUE_NULL;
		return 0;
	}
	switch (PQftype(r, col)) {
	case OID_BOOL:
		v->type = SALES_VALUE_INT;
		v->i = s[0] == 't';
		return 0;
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		v->type = SALES_VALUE_INT;
		v->i = strtoll(s, NULL, 10);
		return 0;
	case OID_NUMERIC:
		/* SUM() of bigints is numeric: an integer while it fits. */
		errno = 0;
		v->i = strtoll(s, &end, 10);
		if (errno == 0 && *end == '\0' && end != s) {
			v->type = SALES_VALUE_INT;
			return 0;
		}
		/* FALLTHROUGH */
	case OID_FLOAT4:
	case OID_FLOAT8:
		v->type = SALES_VALUE_REAL;
		v->d = strtod(s, NULL);
		return 0;
	case OID_BYTEA:
		if ((*blob = PQunescapeBytea((const unsigned char *)s,
		    &n)) == NULL)
			return -1;
		v->type = SALES_VALUE_BLOB;
		v->s = (const char *)*blob;
		v->len = n;
		return 0;
	default:
		v->type = SALES_VALUE_TEXT;
		v->s = s;
		v->len = (size_t)PQgetlength(r, row, col);
		return 0;
	}
}

static int
pg_rows(PGresult *r, struct sales_store_result *res)
{
	struct sales_value small[PG_PARAMS_SMALL], *row = small;
	unsigned char *blobs[PG_PARAMS_SMALL], **blob = blobs;
	int nrows = PQntuples(r), ncols = PQnfields(r), i, k, fail = 0;

	if (ncols > PG_PARAMS_SMALL &&
	    ((row = calloc((size_t)ncols, sizeof(*row))) == NULL ||
	    (blob = calloc((size_t)ncols, sizeof(*blob))) == NULL))
		fail = 1;
	for (i = 0; i < nrows && !fail; i++) {
		memset(blob, 0, (size_t)ncols * sizeof(*blob));
		for (k = 0; k < ncols && !fail; k++)
			fail = pg_value(r, i, k, &row[k], &blob[k]) == -1;
		if (!fail)
			fail = pg_host->result_add(res, row) == -1;
		for (k = 0; k < ncols; k++)
			PQfreemem(blob[k]);
	}
	if (row != small)
		free(row);
	if (blob != blobs)
		free(blob);
	return fail ? -1 : 0;
}

/* SQLSTATE class 23: integrity constraint violation. */
static int
pg_constraint(PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return state != NULL && strncmp(state, "23", 2) == 0;
}

void
pg_args_free(struct pg_args *a)
{
	if (a->vals != a->vsmall)
		free(a->vals);
	if (a->lens != a->lsmall)
		free(a->lens);
	if (a->fmts != a->fsmall)
		free(a->fmts);
	if (a->num != a->nsmall)
		free(a->num);
	a->vals = NULL;
	a->lens = NULL;
	a->fmts = NULL;
	a->num = NULL;
}

int
pg_args_set(struct pg_args *a, const struct sales_store_stmt *stmt,
    char *err, size_t errlen)
{
	const struct sales_value *v;
	size_t i, n = stmt->nparams;

	a->vals = a->vsmall;
	a->lens = a->lsmall;
	a->fmts = a->fsmall;
	a->num = a->nsmall;
	if (n > PG_PARAMS_SMALL) {
		a->vals = calloc(n, sizeof(*a->vals));
		a->lens = calloc(n, sizeof(*a->lens));
		a->fmts = calloc(n, sizeof(*a->fmts));
		a->num = calloc(n, sizeof(*a->num));
		if (a->vals == NULL || a->lens == NULL || a->fmts == NULL ||
		    a->num == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		v = &stmt->params[i];
		a->lens[i] = 0;
		a->fmts[i] = 0;
		switch (v->type) {
		case SALES_VALUE_NULL:
			a->vals[i] = NULL;
			break;
		case SALES_VALUE_INT:
			snprintf(a->num[i], sizeof(a->num[i]), "%lld",
			    (long long)v->i);
			a->vals[i] = a->num[i];
			break;
		case SALES_VALUE_REAL:
			/* 17 digits: the same double comes back. */
			snprintf(a->num[i], sizeof(a->num[i]), "%.17g", v->d);
			a->vals[i] = a->num[i];
			break;
		case SALES_VALUE_TEXT:
			a->vals[i] = v->s != NULL ? v->s : "";
			break;
		case SALES_VALUE_BLOB:
			if (v->len > INT_MAX) {
				snprintf(err, errlen, "parameter %zu too long",
				    i + 1);
				return -1;
			}
			a->vals[i] = v->s != NULL ? v->s : "";
			a->lens[i] = (int)v->len;
			a->fmts[i] = 1;
			break;
		default:
			snprintf(err, errlen, "parameter %zu has no valid type",
			    i + 1);
			return -1;
		}
	}
	return 0;
}

/* A statement's rows into a new result set, *res; -1 out of memory. */
int
pg_result(PGresult *r, struct sales_store_result **res)
{
	if ((*res = pg_host->result_new((size_t)PQnfields(r))) != NULL &&
	    pg_rows(r, *res) == 0)
		return 0;
	pg_host->result_free(*res);
	*res = NULL;
	return -1;
}

/*
 * Is the error the database's rather than the statement's: it cannot
 * take writes now (read-only, disk full, out of resources, shut down,
 * an I/O error, the connection lost), whichever unit were run?
 * SQLite loses the transaction on such errors, and so the store
 * counts them as storage faults; PostgreSQL keeps the savepoint, so
 * rollback_to says so itself.
 */
static int
pg_fault(PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	static const char *const classes[] = { "08", "53", "57", "58",
	    "XX" };
	size_t i;

	if (state == NULL)
		return 1;	/* no answer from the server at all */
	if (strcmp(state, "25006") == 0)	/* read_only_sql_transaction */
		return 1;
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(state, classes[i], 2) == 0)
			return 1;
	return 0;
}

int
pg_exec(void *conn, const struct sales_store_stmt *stmt,
    struct sales_store_result **res, int *constraint, char *err,
    size_t errlen)
{
	struct pg_conn *c = conn;
	struct pg_args a;
	struct pg_prep *p;
	PGresult *r = NULL;
	ExecStatusType s;
	size_t n = stmt->nparams;
	int transient, ret = -1;

	*constraint = 0;
	if (res != NULL)
		*res = NULL;
	if ((p = pg_prepare(c, stmt->sql, &transient, err, errlen)) == NULL)
		return -1;
	memset(&a, 0, sizeof(a));
	if (n != (size_t)p->nparams) {
		snprintf(err, errlen, "statement takes %d parameters, got %zu",
		    p->nparams, n);
		goto done;
	}
	if (pg_args_set(&a, stmt, err, errlen) == -1)
		goto done;
	c->last_used = pg_host->mono_ms();
	if (PQtransactionStatus(c->pg) == PQTRANS_INTRANS)
		c->wrote = 1;
	r = PQexecPrepared(c->pg, p->name, (int)n, a.vals, a.lens, a.fmts,
	    0);
	s = PQresultStatus(r);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		pg_result_error(c, r, err, errlen);
		*constraint = pg_constraint(r);
		if (pg_fault(r))
			c->lost = 1;
		goto done;
	}
	if (res != NULL && pg_result(r, res) == -1) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	ret = 0;
done:
	PQclear(r);
	pg_args_free(&a);
	if (transient)
		free(p);
	return ret;
}

/*
 * A writer's transaction waits for the cluster's commit lock (one
 * round trip with BEGIN); PostgreSQL releases it at commit or rollback.
 * Group commit amortises the wait as it does the flush.
 */
static int
pg_begin(void *conn, char *err, size_t errlen)
{
	struct pg_conn *c = conn;

	c->wrote = c->lost = 0;
	if (!c->writer)
		return pg_simple(c, "BEGIN", err, errlen);
	return pg_simple(c, "BEGIN; " PG_COMMIT_LOCK, err, errlen);
}

/*
 * PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not
 * an error: that must not be taken for a durable group.
 */
static int
pg_commit(void *conn, char *err, size_t errlen)
{
	struct pg_conn *c = conn;
	PGresult *r;
	int ok;

	if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
		snprintf(err, errlen, "the transaction failed before commit");
		return -1;
	}
	/*
	 * A transaction that wrote tells every listener, in the same
	 * round trip: PostgreSQL delivers the notice only if it commits,
	 * and only once it has.
	 */
	r = PQexec(c->pg, c->wrote && c->writer ? pg_notify : "COMMIT");
	c->wrote = 0;
	ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok) {
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			snprintf(err, errlen, "commit was rolled back");
		else
			pg_result_error(c, r, err, errlen);
	}
	PQclear(r);
	return ok ? 0 : -1;
}

static int
pg_rollback(void *conn)
{
	struct pg_conn *c = conn;

	c->wrote = c->lost = 0;
	switch (PQtransactionStatus(c->pg)) {
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
		return pg_simple(c, "ROLLBACK", NULL, 0);
	default:
		return 0;	/* none open, or the connection is gone */
	}
}

static int
pg_savepoint(void *conn, char *err, size_t errlen)
{
	return pg_simple(conn, "SAVEPOINT unit", err, errlen);
}

static int
pg_release(void *conn, char *err, size_t errlen)
{
	return pg_simple(conn, "RELEASE SAVEPOINT unit", err, errlen);
}

static int
pg_rollback_to(void *conn)
{
	struct pg_conn *c = conn;
	PGTransactionStatusType t = PQtransactionStatus(c->pg);

	if (t != PQTRANS_INTRANS && t != PQTRANS_INERROR)
		return -1;	/* the transaction itself is gone */
	if (c->lost)
		return -1;	/* so is the database, for writes */
	return pg_simple(c, "ROLLBACK TO SAVEPOINT unit", NULL, 0);
}

/*
 * Cheap: a connection that libpq knows is broken is reset, at most once
 * a second (a reset waits for the connect timeout); its statements are
 * prepared again on the new session.  libpq learns that the server
 * went away (a restart, a failover) only from a round trip: one that
 * has been idle for a second is pinged first, so that the writer's idle
 * look finds a lost server before a client's order does.
 */
int
pg_check(void *conn, char *err, size_t errlen)
{
	struct pg_conn *c = conn;
	int64_t now = pg_host->mono_ms();
	char m[768];

	if (PQstatus(c->pg) == CONNECTION_OK && now - c->last_used >=
	    PG_IDLE_MS && PQtransactionStatus(c->pg) == PQTRANS_IDLE)
		(void)pg_simple(c, "SELECT 1", NULL, 0);
	if (PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	if (c->last_reset == 0 || now - c->last_reset >= PG_RESET_MS) {
		c->last_reset = now;
		PQreset(c->pg);
		if (PQstatus(c->pg) == CONNECTION_OK) {
			pg_forget(c);
			if (pg_session(c, err, errlen) == 0) {
				pg_host->log(SALES_LOG_INFO, "database \"%s\": "
				    "connected again (%s)", c->where,
				    c->writer ? "writer" : "reader");
				return 0;
			}
			return -1;
		}
	}
	pg_msg(PQerrorMessage(c->pg), m, sizeof(m));
	snprintf(err, errlen, "database \"%s\" is unreachable (%s); writes "
	    "fail (503) until it is back, salesd reconnects by itself",
	    c->where, m);
	return -1;
}

/*
 * Can the transaction write?  A read-only one (default_transaction_read_
 * only, set by an operator or for a database being moved) still takes
 * a transaction id and commits: only its setting tells.
 */
static int
pg_writable(struct pg_conn *c, char *err, size_t errlen)
{
	PGresult *r;
	int ok;

	c->last_used = pg_host->mono_ms();
	r = PQexec(c->pg, "SELECT current_setting('transaction_read_only')");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		pg_result_error(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	ok = strcmp(PQgetvalue(r, 0, 0), "off") == 0;
	PQclear(r);
	if (!ok)
		snprintf(err, errlen, "database \"%s\" is read-only "
		    "(default_transaction_read_only is on)", c->where);
	return ok ? 0 : -1;
}

/* A real commit, as small as can be: one that takes a transaction id. */
static int
pg_probe(void *conn, char *err, size_t errlen)
{
	struct pg_conn *c = conn;

	if (pg_check(c, err, errlen) == -1)
		return -1;
	if (pg_simple(c, "BEGIN", err, errlen) == -1 ||
	    pg_simple(c, "SELECT txid_current()", err, errlen) == -1 ||
	    pg_writable(c, err, errlen) == -1 ||
	    pg_commit(c, err, errlen) == -1) {
		pg_rollback(c);
		return -1;
	}
	return 0;
}

/* The listener's connection: every instance's commits from now on. */
static int
pg_listen(void *conn, char *err, size_t errlen)
{
	return pg_simple(conn, "LISTEN " PG_CHANNEL, err, errlen);
}

/* Notices arrived: 0 none, 1 only this process's, 2 another's too. */
static int
pg_notices(struct pg_conn *c)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(c->pg)) != NULL) {
		if (strcmp(n->extra, pg_token) != 0)
			got = 2;
		else if (got == 0)
			got = 1;
		PQfreemem(n);
	}
	return got;
}

/*
 * Waits on the socket (libpq's asynchronous notification interface).
 * A connection silent for PG_LISTEN_IDLE_MS is pinged, so that a
 * server gone without closing the socket is found too.
 */
static int
pg_wait(void *conn, int timeout_ms, char *err, size_t errlen)
{
	struct pg_conn *c = conn;
	struct pollfd pfd;
	int got, rc;

	if (PQconsumeInput(c->pg) == 0)
		goto lost;
	if ((got = pg_notices(c)) != 0)
		return got;
	memset(&pfd, 0, sizeof(pfd));
	if ((pfd.fd = PQsocket(c->pg)) < 0)
		goto lost;
	pfd.events = POLLIN;
	rc = poll(&pfd, 1, timeout_ms);
	if (rc == -1 && errno != EINTR) {
		snprintf(err, errlen, "poll: %s", strerror(errno));
		return -1;
	}
	if (rc > 0) {
		if (PQconsumeInput(c->pg) == 0)
			goto lost;
	} else if (pg_host->mono_ms() - c->last_used >= PG_LISTEN_IDLE_MS &&
	    pg_simple(c, "SELECT 1", err, errlen) == -1)
		return -1;
	if (PQstatus(c->pg) != CONNECTION_OK)
		goto lost;
	return pg_notices(c);
lost:
	pg_result_error(c, NULL, err, errlen);
	return -1;
}

static int
pg_tables(void *conn, struct sales_store_result **res, char *err,
    size_t errlen)
{
	struct sales_store_stmt s = { "SELECT c.table_name, c.column_name "
	    "FROM information_schema.columns c JOIN information_schema.tables "
	    "t USING (table_schema, table_name) WHERE t.table_type = "
	    "'BASE TABLE' AND c.table_schema = current_schema() AND "
	    "c.table_name <> 'schema_modules' ORDER BY c.table_name, "
	    "c.ordinal_position", NULL, 0 };
	int constraint;

	return pg_exec(conn, &s, res, &constraint, err, errlen);
}

/*
 * migrate-data's target: the copied rows carry their derived data (the
 * totals an insert trigger keeps), so the table's own triggers are off
 * while it fills, inside the copy's transaction.
 */
static int
pg_bulk(void *conn, const char *table, int on, char *err, size_t errlen)
{
	struct pg_conn *c = conn;
	char *name, sql[512];
	int rc;

	if ((name = PQescapeIdentifier(c->pg, table, strlen(table))) == NULL) {
		pg_result_error(c, NULL, err, errlen);
		return -1;
	}
	snprintf(sql, sizeof(sql), "ALTER TABLE %s %s TRIGGER USER", name,
	    on ? "DISABLE" : "ENABLE");
	PQfreemem(name);
	rc = pg_simple(c, sql, err, errlen);
	return rc;
}

static const struct sales_store_driver pg_driver = {
	.size = sizeof(struct sales_store_driver),
	.abi = SALES_STORE_DRIVER_ABI,
	.name = "postgres",
	.dialect = "postgres",
	.flags = 0,
	.open = pg_open,
	.close = pg_close,
	.migrate = pg_migrate,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.savepoint = pg_savepoint,
	.release = pg_release,
	.rollback_to = pg_rollback_to,
	.exec = pg_exec,
	.check = pg_check,
	.probe = pg_probe,
	.plan = pg_plan,
	.plan_module = pg_plan_module,
	.tables = pg_tables,
	.bulk = pg_bulk,
	.listen = pg_listen,
	.wait = pg_wait,
	.exec_group = pg_exec_group,
};

SALES_STORE_DRIVER(host)
{
	char name[64];

	if (host->size < sizeof(struct sales_store_host))
		return NULL;	/* an older core: the loader says so */
	pg_host = host;
	/* Unique among the cluster's processes while this one lives. */
	if (gethostname(name, sizeof(name)) == -1)
		name[0] = '\0';
	name[sizeof(name) - 1] = '\0';
	snprintf(pg_token, sizeof(pg_token), "%.24s.%ld.%lld.%lx", name,
	    (long)getpid(), (long long)host->mono_ms(),
	    (unsigned long)time(NULL));
	snprintf(pg_notify, sizeof(pg_notify), "NOTIFY " PG_CHANNEL ", '%s'; "
	    "COMMIT", pg_token);
	return &pg_driver;
}
