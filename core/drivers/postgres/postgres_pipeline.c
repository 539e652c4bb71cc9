/*
 * postgres_pipeline.c - the group commit's first try in one round trip
 * (libpq's pipeline mode, libpq 14 or later): BEGIN, the cluster's
 * commit lock and every statement of the group are sent together and
 * their results read after, where one at a time a group of N
 * statements costs N + 1 round trips.  COMMIT (with its NOTIFY) stays
 * a round trip of its own, pg_commit's: it is sent only once every
 * statement's result is in hand, so a unit whose rows could not be
 * read is never committed, and a 201 still waits for COMMIT's answer.
 *
 * The server stops at the first error and skips the rest of the
 * pipeline (PGRES_PIPELINE_ABORTED) up to its sync, leaving the
 * session in the failed transaction: that is rolled back here and the
 * core runs the group again the ordinary way, a savepoint per unit, so
 * a failing unit still fails alone.
 *
 * The pipeline is written in non-blocking mode, reading what the
 * server answers meanwhile: blocking, a group larger than the socket
 * buffers would deadlock (the server blocked sending results that are
 * not read, the client blocked sending statements that are not read).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "postgres.h"

#define PL_HEAD	2	/* BEGIN and the lock, before the statements */

/* Writes out what is queued; 0, or -1 when the connection failed. */
static int
pl_flush(struct pg_conn *c)
{
	struct pollfd pfd;
	int rc;

	while ((rc = PQflush(c->pg)) == 1) {
		memset(&pfd, 0, sizeof(pfd));
		if ((pfd.fd = PQsocket(c->pg)) < 0)
			return -1;
		pfd.events = POLLIN | POLLOUT;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			return -1;
		/* The server's answers so far, into libpq's buffer. */
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    PQconsumeInput(c->pg) == 0)
			return -1;
	}
	return rc;
}

/*
 * Queues BEGIN, the lock and stmts; returns how many were queued (all
 * of them, PL_HEAD + n, unless libpq refused one).
 */
static size_t
pl_send(struct pg_conn *c, const struct sales_store_stmt *stmts,
    struct pg_prep **prep, size_t n)
{
	struct pg_args a;
	char err[256];
	size_t i;
	int ok;

	if (!PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL,
	    0))
		return 0;
	if (!PQsendQueryParams(c->pg, PG_COMMIT_LOCK, 0, NULL, NULL, NULL,
	    NULL, 0))
		return 1;
	for (i = 0; i < n; i++) {
		memset(&a, 0, sizeof(a));
		ok = pg_args_set(&a, &stmts[i], err, sizeof(err)) == 0 &&
		    PQsendQueryPrepared(c->pg, prep[i]->name,
		    (int)stmts[i].nparams, a.vals, a.lens, a.fmts, 0);
		pg_args_free(&a);
		if (!ok)
			break;
	}
	return PL_HEAD + i;
}

/*
 * Reads the results of nq queued queries and the sync.  *failed: a
 * statement failed (or its rows could not be kept); *lost: the
 * pipeline did not end as it should (the connection, most likely).
 * Returns 0, or -1 with err when BEGIN or the lock failed.
 */
static int
pl_read(struct pg_conn *c, size_t nq, size_t n,
    struct sales_store_result **res[], int *failed, int *lost, char *err,
    size_t errlen)
{
	PGresult *r, *more;
	ExecStatusType s;
	size_t q;
	int ret = 0;

	for (q = 0; q < nq; q++) {
		if ((r = PQgetResult(c->pg)) == NULL) {
			*lost = 1;
			return ret;
		}
		s = PQresultStatus(r);
		if (s == PGRES_FATAL_ERROR && q < PL_HEAD) {
			pg_result_error(c, r, err, errlen);
			ret = -1;
		} else if (s == PGRES_FATAL_ERROR ||
		    s == PGRES_PIPELINE_ABORTED)
			*failed = 1;
		else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
			*lost = 1;	/* nothing else is sent */
		else if (q >= PL_HEAD && q - PL_HEAD < n &&
		    res[q - PL_HEAD] != NULL && !*failed &&
		    pg_result(r, res[q - PL_HEAD]) == -1)
			*failed = 1;
		PQclear(r);
		/* Each query's results end with NULL. */
		while ((more = PQgetResult(c->pg)) != NULL) {
			if (PQresultStatus(more) == PGRES_PIPELINE_SYNC) {
				PQclear(more);
				*lost = 1;
				return ret;
			}
			PQclear(more);
		}
	}
	r = PQgetResult(c->pg);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		*lost = 1;
	PQclear(r);
	return ret;
}

/* The statements of stmts prepared (outside any transaction). */
static int
pl_prepare(struct pg_conn *c, const struct sales_store_stmt *stmts,
    struct pg_prep **prep, size_t n)
{
	char err[512];
	size_t i;
	int transient;

	for (i = 0; i < n; i++) {
		prep[i] = pg_prepare(c, stmts[i].sql, &transient, err,
		    sizeof(err));
		/*
		 * A statement that does not prepare, or past the cache
		 * (the unnamed statement, one at a time), or with the
		 * wrong parameters: the ordinary way says so per unit.
		 */
		if (prep[i] == NULL)
			return -1;
		if (transient) {
			free(prep[i]);
			return -1;
		}
		if (stmts[i].nparams != (size_t)prep[i]->nparams)
			return -1;
	}
	return 0;
}

int
pg_exec_group(void *conn, const struct sales_store_stmt *stmts, size_t n,
    struct sales_store_result **res[], char *err, size_t errlen)
{
	struct pg_conn *c = conn;
	struct pg_prep **prep;
	size_t i, nq = 0;
	int failed = 0, lost = 0, ret;

	c->wrote = c->lost = 0;
	if (!c->writer || n == 0 ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return 1;
	if ((prep = calloc(n, sizeof(*prep))) == NULL)
		return 1;
	if (pl_prepare(c, stmts, prep, n) == -1) {
		free(prep);
		return 1;
	}
	c->last_used = pg_host->mono_ms();
	if (PQenterPipelineMode(c->pg) != 1) {
		free(prep);
		return 1;
	}
	failed = 1;
	if (PQsetnonblocking(c->pg, 1) == 0) {
		nq = pl_send(c, stmts, prep, n);
		failed = nq < PL_HEAD + n;
	}
	free(prep);
	/* What was queued is read back in any case: the sync ends it. */
	if (PQpipelineSync(c->pg) != 1 || pl_flush(c) == -1 ||
	    PQsetnonblocking(c->pg, 0) == -1)
		lost = 1;
	ret = lost ? 0 : pl_read(c, nq, n, res, &failed, &lost, err,
	    errlen);
	if (!lost && PQexitPipelineMode(c->pg) != 1)
		lost = 1;
	if (lost || PQstatus(c->pg) != CONNECTION_OK) {
		/*
		 * A pipeline that did not end leaves the session unusable
		 * (every synchronous call refused): drop it, and check()
		 * connects again as after any lost connection.
		 */
		if (PQstatus(c->pg) == CONNECTION_OK) {
			PQreset(c->pg);
			pg_forget(c);
			if (PQstatus(c->pg) == CONNECTION_OK)
				(void)pg_session(c, err, errlen);
		}
		if (ret == 0 || err[0] == '\0')
			pg_result_error(c, NULL, err, errlen);
		/*
		 * The server may have said why before it went (an
		 * administrator's termination): the fault to report is
		 * whether it can be reached now, as check() would say
		 * before the next group.
		 */
		(void)pg_check(c, err, errlen);
		ret = -1;
	}
	if (ret == 0 && !failed) {
		c->wrote = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		if (res[i] != NULL && *res[i] != NULL) {
			pg_host->result_free(*res[i]);
			*res[i] = NULL;
		}
	if (ret == -1)
		return -1;	/* the core rolls back */
	c->wrote = 0;
	switch (PQtransactionStatus(c->pg)) {
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
		if (pg_simple(c, "ROLLBACK", err, errlen) == -1)
			return -1;
		break;
	default:
		break;
	}
	return 1;
}
