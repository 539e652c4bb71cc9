/*
 * store.c - the driver-agnostic half of storage: a writer thread that
 * commits write units in groups, a reader thread that runs queries, the
 * queues to them and the hand-off of their outcomes back to the loop.
 *
 * Group commit: the writer takes every queued unit (up to max_group),
 * opens one transaction, runs every unit, commits once (one fsync for
 * the group), then posts the outcomes to the loop in submission order.
 * If a unit fails, that transaction is rolled back and the group runs
 * again with each unit inside its own savepoint (the failing unit is
 * rolled back to its savepoint and fails alone).  If the commit fails
 * every unit of the group fails.
 *
 * Storage faults: a failed commit, or the driver's check before every
 * group finding the database gone (deleted, replaced, unreachable),
 * makes the store unwritable (/health degraded) with the fault
 * described in one log line per episode.  While unwritable, the idle
 * writer probes storage every second with a real commit and the store
 * heals by itself when one succeeds; while healthy, it runs the cheap
 * check as often, so a lost database shows in /health before anyone
 * writes.  A SIGBUS (a driver writing through a memory mapping of a file
 * that cannot be written, SALES_STORE_MAPPED) cannot be turned into an
 * error: it ends the process with the driver's one line saying so.
 *
 * Threads: the writer and the reader each own one driver connection and
 * never touch loop state; they hand finished jobs to a mutex-protected
 * completion queue and wake the loop with event_active() (main enables
 * libevent's pthread locking before creating the base).  Callbacks run
 * on the loop only.
 *
 * It does not know any SQL dialect, table or database: that is the
 * driver's (<sales/store_driver.h>) and the modules' business.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "thread.h"

#define STORE_MAX_GROUP		1024
#define STORE_MAX_QUEUE		65536	/* queued write units before refusing */
#define STORE_MAX_JOB		(256u << 20)	/* bytes of SQL + params per unit */
#define STORE_ERRLEN		1024
#define STORE_PROBE_MS		1000	/* idle writer looks at storage */
#define STORE_RELOG_MS		60000	/* a changed fault, logged again */
#define STORE_EXIT_SIGBUS	74	/* EX_IOERR */
#define STORE_LISTEN_MS		250	/* listener's wait: its stop latency */

enum job_kind {
	JOB_WRITE,
	JOB_QUERY
};

/*
 * One write unit or query.  Allocated as one block: this header, the
 * statement array, the parameter array, then the bytes of every SQL
 * text and TEXT/BLOB value, so a unit costs one malloc.
 */
struct job {
	struct job			*next;
	enum job_kind			 kind;
	sales_store_write_cb		 wcb;
	sales_store_rows_cb		 rcb;		/* write_rows */
	sales_store_query_cb		 qcb;
	void				*arg;
	int				 status;
	int				 constraint;
	char				*err;		/* on failure */
	int				 err_owned;
	struct sales_store_result	*res;		/* queries */
	struct sales_store_result	**rows;		/* write_rows, nstmts */
	size_t				 nstmts;
	struct sales_store_stmt		*stmts;
};

struct queue {
	struct job	*head;
	struct job	*tail;
	size_t		 len;
};

/* A result set: rows of ncols values; TEXT/BLOB bytes live in chunks. */
struct chunk {
	struct chunk	*next;
	size_t		 used;
	size_t		 cap;
	char		 data[];
};

struct sales_store_result {
	size_t			 ncols;
	size_t			 nrows;
	size_t			 cap;		/* rows */
	struct sales_value	*vals;
	struct chunk		*chunks;
};

static struct {
	int				 open;
	struct core_store_config	 cfg;		/* caller's strings */
	struct sales_store_driver_config dcfg;		/* the driver's view */
	const struct sales_store_driver	*drv;
	void				*wconn;
	void				*rconn;
	size_t				 max_group;
	pthread_t			 writer;
	pthread_t			 reader;
	int				 writer_started;
	int				 reader_started;

	pthread_mutex_t			 wlock;		/* wq, wstop */
	pthread_cond_t			 wcond;
	struct queue			 wq;
	int				 wstop;
	pthread_mutex_t			 rlock;		/* rq, rstop */
	pthread_cond_t			 rcond;
	struct queue			 rq;
	int				 rstop;
	pthread_mutex_t			 rconn_lock;	/* reader's connection */
	pthread_mutex_t			 dlock;		/* done */
	struct queue			 done;
	struct event			*done_ev;
	int				 closing;	/* loop thread only */
	pthread_mutex_t			 flock;		/* fault */
	char				 fault[STORE_ERRLEN];
	int64_t				 fault_since;	/* writer only */
	int64_t				 fault_logged;	/* writer only */

	/* store_watch: the watchers (loop only) and the listener. */
	struct watcher			*watchers;
	struct event			*watch_ev;
	pthread_t			 listener;
	int				 listener_started;
	atomic_int			 lstop;
} st;

struct watcher {
	struct watcher		*next;
	char			*module;
	sales_store_watch_cb	 cb;
	void			*arg;
};

/* What the next watch call says: WATCH_OWN and/or WATCH_OTHERS. */
#define WATCH_OWN	0x1
#define WATCH_OTHERS	0x2
static atomic_int		watch_flags;

static atomic_int		store_writable;
static atomic_size_t		store_pending;
/* Per write group, observed by the writer thread, read by the loop. */
static pthread_mutex_t		hist_lock = PTHREAD_MUTEX_INITIALIZER;
static struct core_hist		commit_hist, group_hist;
static const double		group_bounds[] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384
};
static atomic_uint_least64_t	store_commits;
static atomic_uint_least64_t	store_units;

static const char	oom[] = "out of memory";

/* Written at open, for the SIGBUS handler, which may not format. */
static char		bus_msg[2 * PATH_MAX + 512];
static size_t		bus_len;

/*
 * A TEXT value with len 0 and a non-NULL s is taken as NUL-terminated,
 * so a module may pass plain C strings.  The driver applies the same rule.
 */
static size_t
value_len(const struct sales_value *v)
{
	if (v->type != SALES_VALUE_TEXT && v->type != SALES_VALUE_BLOB)
		return 0;
	if (v->s == NULL)
		return 0;
	if (v->len == 0 && v->type == SALES_VALUE_TEXT)
		return strlen(v->s);
	return v->len;
}

static size_t
align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

static struct job *
job_new(enum job_kind kind, const struct sales_store_stmt *stmts, size_t n)
{
	struct job *j;
	struct sales_value *vals;
	char *bytes;
	size_t i, k, nvals = 0, nbytes = 0, off_stmts, off_vals, off_bytes;
	size_t total, len;

	for (i = 0; i < n; i++) {
		if (stmts[i].sql == NULL ||
		    (stmts[i].nparams > 0 && stmts[i].params == NULL))
			return NULL;
		if (stmts[i].nparams > 32766)
			return NULL;
		nvals += stmts[i].nparams;
		nbytes += strlen(stmts[i].sql) + 1;
		for (k = 0; k < stmts[i].nparams; k++)
			nbytes += value_len(&stmts[i].params[k]) + 1;
		if (nbytes > STORE_MAX_JOB || nvals > STORE_MAX_JOB)
			return NULL;
	}
	off_stmts = align_up(sizeof(*j), alignof(struct sales_store_stmt));
	off_vals = align_up(off_stmts + n * sizeof(struct sales_store_stmt),
	    alignof(struct sales_value));
	off_bytes = off_vals + nvals * sizeof(struct sales_value);
	total = off_bytes + nbytes;
	if ((j = malloc(total)) == NULL)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->nstmts = n;
	j->stmts = (struct sales_store_stmt *)((char *)j + off_stmts);
	vals = (struct sales_value *)((char *)j + off_vals);
	bytes = (char *)j + off_bytes;
	for (i = 0; i < n; i++) {
		len = strlen(stmts[i].sql);
		memcpy(bytes, stmts[i].sql, len + 1);
		j->stmts[i].sql = bytes;
		bytes += len + 1;
		j->stmts[i].params = stmts[i].nparams ? vals : NULL;
		j->stmts[i].nparams = stmts[i].nparams;
		for (k = 0; k < stmts[i].nparams; k++, vals++) {
			*vals = stmts[i].params[k];
			if (vals->type != SALES_VALUE_TEXT &&
			    vals->type != SALES_VALUE_BLOB)
				continue;
			len = value_len(&stmts[i].params[k]);
			if (len > 0)
				memcpy(bytes, stmts[i].params[k].s, len);
			bytes[len] = '\0';
			vals->s = bytes;
			vals->len = len;
			bytes += len + 1;
		}
	}
	return j;
}

static void
job_rows_free(struct job *j)
{
	size_t k;

	if (j->rows == NULL)
		return;
	for (k = 0; k < j->nstmts; k++) {
		core_store_result_free(j->rows[k]);
		j->rows[k] = NULL;
	}
}

static void
job_free(struct job *j)
{
	if (j->err_owned)
		free(j->err);
	core_store_result_free(j->res);
	job_rows_free(j);
	free(j->rows);
	free(j);
}

static void
job_fail(struct job *j, int constraint, const char *err)
{
	job_rows_free(j);	/* nothing of a failed unit is stored */
	if (j->status == -1)
		return;		/* keep the first, most specific reason */
	j->status = -1;
	j->constraint = constraint;
	if ((j->err = strdup(err != NULL && *err ? err : "unknown error")) ==
	    NULL)
		j->err = (char *)oom;
	else
		j->err_owned = 1;
}

static void
queue_push(struct queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->len++;
}

/* Hands a chain of finished jobs, in order, to the loop. */
static void
post_done(struct job *first, struct job *last, size_t n)
{
	int wake;

	pthread_mutex_lock(&st.dlock);
	wake = st.done.head == NULL;
	if (st.done.tail != NULL)
		st.done.tail->next = first;
	else
		st.done.head = first;
	st.done.tail = last;
	last->next = NULL;
	st.done.len += n;
	pthread_mutex_unlock(&st.dlock);
	/*
	 * Only the push that makes the queue non-empty wakes the loop: any
	 * later one finds its jobs taken by the delivery that wake causes.
	 */
	if (wake)
		event_active(st.done_ev, EV_TIMEOUT, 1);
}

/* Loop thread: runs the callbacks of finished jobs, in order. */
static void
store_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct job *j, *next;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&st.dlock);
	j = st.done.head;
	st.done.head = st.done.tail = NULL;
	st.done.len = 0;
	pthread_mutex_unlock(&st.dlock);
	for (; j != NULL; j = next) {
		next = j->next;
		/* Answered as far as pending() is concerned, even in the cb. */
		atomic_fetch_sub(&store_pending, 1);
		if (j->kind == JOB_WRITE && j->rcb != NULL) {
			j->rcb(j->status, j->constraint,
			    j->status == 0 ? NULL : j->err,
			    j->status == 0 ? (const struct sales_store_result *
			    const *)j->rows : NULL, j->nstmts, j->arg);
		} else if (j->kind == JOB_WRITE) {
			if (j->wcb != NULL)
				j->wcb(j->status, j->constraint,
				    j->status == 0 ? NULL : j->err, j->arg);
		} else if (j->qcb != NULL) {
			if (j->status == 0)
				j->qcb(j->res, NULL, j->arg);
			else
				j->qcb(NULL, j->err, j->arg);
		}
		job_free(j);
	}
}

/*
 * Writer thread: storage cannot take writes.  One log line when an
 * episode starts, not one per failed group or probe; a different fault
 * within the episode is logged again at most every STORE_RELOG_MS.
 */
static void
store_fault(const char *err)
{
	int64_t now = core_mono_ms();
	int first, log;

	pthread_mutex_lock(&st.flock);
	first = st.fault[0] == '\0';
	log = first || (strcmp(st.fault, err) != 0 &&
	    now - st.fault_logged >= STORE_RELOG_MS);
	snprintf(st.fault, sizeof(st.fault), "%s", err);
	pthread_mutex_unlock(&st.flock);
	atomic_store(&store_writable, 0);
	if (first)
		st.fault_since = now;
	if (!log)
		return;
	st.fault_logged = now;
	core_log("store", SALES_LOG_ERROR, "storage fault: %s; until it "
	    "heals, writes fail (503) and /health is degraded; storage is "
	    "probed every %d s", err, STORE_PROBE_MS / 1000);
}

/* Writer thread: a commit went through. */
static void
store_healed(void)
{
	int was;

	if (atomic_load(&store_writable))
		return;
	pthread_mutex_lock(&st.flock);
	was = st.fault[0] != '\0';
	st.fault[0] = '\0';
	pthread_mutex_unlock(&st.flock);
	atomic_store(&store_writable, 1);
	if (was)
		core_log("store", SALES_LOG_INFO, "storage recovered after "
		    "%lld s: writes are accepted again",
		    (long long)((core_mono_ms() - st.fault_since) / 1000));
}

/*
 * Fails every unit of a group that has not failed on its own; what
 * (may be NULL) says which step failed, for the clients.
 */
static void
group_fail(struct job *j, size_t n, const char *what, const char *err)
{
	char msg[STORE_ERRLEN + 64];

	snprintf(msg, sizeof(msg), "%s%s%s", what ? what : "",
	    what ? ": " : "", err);
	for (; n > 0; n--, j = j->next)
		job_fail(j, 0, msg);
	store_fault(err);
}

/*
 * Writer thread: statement k of unit j, keeping its rows when the unit
 * asked for them (a group run again replaces those of the first try).
 */
static int
unit_exec(struct job *j, size_t k, int *constraint, char *err,
    size_t errlen)
{
	struct sales_store_result **res = NULL;

	if (j->rows != NULL) {
		res = &j->rows[k];
		core_store_result_free(*res);
		*res = NULL;
	}
	return st.drv->exec(st.wconn, &j->stmts[k], res, constraint, err,
	    errlen);
}

/* Does the driver have op (an optional member appended later)? */
#define DRV_HAS(drv, op)						\
	(offsetof(struct sales_store_driver, op) +			\
	    sizeof((drv)->op) <= (drv)->size && (drv)->op != NULL)

/*
 * Writer thread, the first try's statements through the driver's
 * exec_group (a network database: the group in one round trip rather
 * than one per statement).  0: they ran, the transaction is open; 1 or
 * -1 as exec_group (after -1 the group has failed); 2 when the driver
 * has none or there is no memory for the statement list: the caller
 * runs them one by one.
 */
static int
run_group_batch(struct job *first, size_t n)
{
	struct sales_store_stmt *stmts;
	struct sales_store_result ***res;
	struct job *j;
	char err[STORE_ERRLEN];
	size_t i, k, total = 0, at = 0;
	int rc;

	if (!DRV_HAS(st.drv, exec_group))
		return 2;
	for (i = 0, j = first; i < n; i++, j = j->next)
		total += j->nstmts;
	stmts = calloc(total ? total : 1, sizeof(*stmts));
	res = calloc(total ? total : 1, sizeof(*res));
	if (stmts == NULL || res == NULL) {
		free(stmts);
		free(res);
		return 2;
	}
	for (i = 0, j = first; i < n; i++, j = j->next)
		for (k = 0; k < j->nstmts; k++, at++) {
			stmts[at] = j->stmts[k];
			if (j->rows != NULL) {
				core_store_result_free(j->rows[k]);
				j->rows[k] = NULL;
				res[at] = &j->rows[k];
			}
		}
	err[0] = '\0';
	rc = st.drv->exec_group(st.wconn, stmts, total, res, err,
	    sizeof(err));
	free(stmts);
	free(res);
	if (rc == -1) {
		st.drv->rollback(st.wconn);
		group_fail(first, n, "begin failed", err);
	}
	return rc;
}

/*
 * Writer thread, the first try's statements one round trip each, as
 * run_group_batch's: 0 they ran, the transaction is open; 1 one failed
 * (rolled back); -1 begin failed (the group has failed).
 */
static int
run_group_each(struct job *first, size_t n)
{
	struct job *j;
	char err[STORE_ERRLEN];
	size_t i, k;
	int constraint;

	err[0] = '\0';
	if (st.drv->begin(st.wconn, err, sizeof(err)) == -1) {
		st.drv->rollback(st.wconn);
		group_fail(first, n, "begin failed", err);
		return -1;
	}
	for (i = 0, j = first; i < n; i++, j = j->next)
		for (k = 0; k < j->nstmts; k++)
			if (unit_exec(j, k, &constraint, err,
			    sizeof(err)) == -1) {
				st.drv->rollback(st.wconn);
				return 1;
			}
	return 0;
}

/*
 * Writer thread, first try: the group in one transaction without
 * savepoints.  Returns 0 when committed (or failed as a whole, which
 * group_fail recorded), 1 when a unit failed: the transaction is then
 * rolled back, nothing of the group is stored, and the caller runs the
 * group again with a savepoint per unit, so the outcome is the same as
 * if savepoints had been used from the start.  Failing units are rare;
 * the two savepoint statements per unit are not free.
 */
static int
run_group_fast(struct job *first, size_t n)
{
	const struct sales_store_driver *drv = st.drv;
	void *c = st.wconn;
	char err[STORE_ERRLEN];
	int rc;

	if ((rc = run_group_batch(first, n)) == 2)
		rc = run_group_each(first, n);
	if (rc == -1)
		return 0;	/* failed as a whole, recorded */
	if (rc == 1)
		return 1;
	err[0] = '\0';
	if (drv->commit(c, err, sizeof(err)) == -1) {
		drv->rollback(c);
		group_fail(first, n, "commit failed", err);
		return 0;
	}
	store_healed();
	atomic_fetch_add(&store_commits, 1);
	atomic_fetch_add(&store_units, n);
	return 0;
}

/* Writer thread: one transaction for the group, a savepoint per unit. */
static void
run_group(struct job *first, size_t n)
{
	const struct sales_store_driver *drv = st.drv;
	void *c = st.wconn;
	struct job *j;
	char err[STORE_ERRLEN];
	size_t i, k, ok = 0;
	int constraint;

	err[0] = '\0';
	if (drv->begin(c, err, sizeof(err)) == -1) {
		drv->rollback(c);
		group_fail(first, n, "begin failed", err);
		return;
	}
	for (i = 0, j = first; i < n; i++, j = j->next) {
		if (drv->savepoint(c, err, sizeof(err)) == -1)
			goto abort;
		for (k = 0; k < j->nstmts; k++) {
			constraint = 0;
			err[0] = '\0';
			if (unit_exec(j, k, &constraint, err,
			    sizeof(err)) == -1) {
				job_fail(j, constraint, err);
				break;
			}
		}
		if (j->status == -1) {
			/*
			 * If the driver lost the whole transaction (disk
			 * full, I/O error), the savepoint is gone too and
			 * the group cannot be saved.
			 */
			if (drv->rollback_to(c) == -1) {
				/* The unit's reason is the fault's. */
				snprintf(err, sizeof(err), "transaction lost "
				    "after a failed unit (%s)", j->err);
				goto abort;
			}
		}
		if (drv->release(c, err, sizeof(err)) == -1)
			goto abort;
		if (j->status == 0)
			ok++;
	}
	if (drv->commit(c, err, sizeof(err)) == -1) {
		drv->rollback(c);
		group_fail(first, n, "commit failed", err);
		return;
	}
	store_healed();
	atomic_fetch_add(&store_commits, 1);
	atomic_fetch_add(&store_units, ok);
	return;
abort:
	drv->rollback(c);
	group_fail(first, n, "transaction failed", err);
}

/*
 * Idle writer, every STORE_PROBE_MS: while healthy only the cheap check
 * (the files are still there), while unwritable a real commit.
 */
static void
store_probe(void)
{
	char err[STORE_ERRLEN];
	int healthy = atomic_load(&store_writable), rc;

	err[0] = '\0';
	if (healthy)
		rc = st.drv->check(st.wconn, err, sizeof(err));
	else
		rc = st.drv->probe(st.wconn, err, sizeof(err));
	if (rc == -1)
		store_fault(err);
	else if (!healthy)
		store_healed();
}

static void
store_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Any thread: the watchers are to be called (flags: WATCH_*). */
static void
watch_post(int flags)
{
	/* Only the post that finds no call pending wakes the loop. */
	if (atomic_fetch_or(&watch_flags, flags) == 0 && st.watch_ev != NULL)
		event_active(st.watch_ev, EV_TIMEOUT, 1);
}

/* Loop thread: one call to every watcher for all posts since the last. */
static void
watch_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w;
	int flags;

	(void)fd;
	(void)what;
	(void)arg;
	if ((flags = atomic_exchange(&watch_flags, 0)) == 0)
		return;
	for (w = st.watchers; w != NULL; w = w->next)
		w->cb((flags & WATCH_OTHERS) != 0, w->arg);
}

/* Listener thread: sleeps ms, or less when told to stop. */
static void
store_nap(int ms)
{
	for (; ms > 0 && !atomic_load(&st.lstop); ms -= STORE_LISTEN_MS)
		usleep(STORE_LISTEN_MS * 1000);
}

static void *
store_writer(void *arg)
{
	struct job *first, *last;
	struct timespec ts;
	char err[STORE_ERRLEN];
	struct timespec t0, t1;
	uint64_t units;
	size_t n;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&st.wlock);
		while (st.wq.head == NULL && !st.wstop) {
			store_deadline(&ts, STORE_PROBE_MS);
			if (pthread_cond_timedwait(&st.wcond, &st.wlock,
			    &ts) != ETIMEDOUT)
				continue;
			pthread_mutex_unlock(&st.wlock);
			store_probe();
			pthread_mutex_lock(&st.wlock);
		}
		if (st.wq.head == NULL) {
			pthread_mutex_unlock(&st.wlock);
			break;
		}
		first = last = st.wq.head;
		for (n = 1; n < st.max_group && last->next != NULL; n++)
			last = last->next;
		st.wq.head = last->next;
		if (st.wq.head == NULL)
			st.wq.tail = NULL;
		st.wq.len -= n;
		last->next = NULL;
		pthread_mutex_unlock(&st.wlock);

		/* Refused rather than acknowledged and lost at restart. */
		err[0] = '\0';
		units = atomic_load(&store_units);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (st.drv->check(st.wconn, err, sizeof(err)) == -1)
			group_fail(first, n, NULL, err);
		else if (run_group_fast(first, n) == 1)
			run_group(first, n);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		pthread_mutex_lock(&hist_lock);
		core_hist_observe(&commit_hist, core_hist_seconds,
		    core_hist_nseconds, (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		core_hist_observe(&group_hist, group_bounds,
		    sizeof(group_bounds) / sizeof(group_bounds[0]), (double)n);
		pthread_mutex_unlock(&hist_lock);
		post_done(first, last, n);
		/*
		 * A database no other process writes: this commit is all
		 * there is to tell the watchers (after its callbacks).  A
		 * shared one tells them through the listener, own commits
		 * and others' alike.
		 */
		if (!DRV_HAS(st.drv, listen) &&
		    atomic_load(&store_units) != units)
			watch_post(WATCH_OWN);
	}
	return NULL;
}

/*
 * Listener thread (drivers with listen/wait): one connection of its
 * own that hears every instance's commits.  A first LISTEN, and every
 * one after a lost connection, tells the watchers that commits may
 * have gone unheard, so that they read from their watermarks; the
 * connection is tried again every STORE_PROBE_MS meanwhile, with one
 * log line per episode.
 */
static void *
store_listener(void *arg)
{
	void *conn = NULL;
	char err[STORE_ERRLEN];
	int rc, lost = 0, listened = 0;

	(void)arg;
	while (!atomic_load(&st.lstop)) {
		if (conn == NULL) {
			err[0] = '\0';
			if ((conn = st.drv->open(&st.dcfg, 0, err,
			    sizeof(err))) == NULL ||
			    st.drv->listen(conn, err, sizeof(err)) == -1) {
				if (conn != NULL)
					st.drv->close(conn);
				conn = NULL;
				if (!lost)
					core_log("store", SALES_LOG_WARN,
					    "cannot listen for the commits of "
					    "other instances: %s; trying "
					    "again every %d s", err,
					    STORE_PROBE_MS / 1000);
				lost = 1;
				store_nap(STORE_PROBE_MS);
				continue;
			}
			if (lost)
				core_log("store", SALES_LOG_INFO, "listening "
				    "for the commits of other instances again");
			else if (!listened)
				core_log("store", SALES_LOG_DEBUG, "listening "
				    "for the commits of other instances");
			lost = 0;
			listened = 1;
			watch_post(WATCH_OTHERS);
		}
		err[0] = '\0';
		rc = st.drv->wait(conn, STORE_LISTEN_MS, err, sizeof(err));
		if (rc == 1)
			watch_post(WATCH_OWN);
		else if (rc == 2)
			watch_post(WATCH_OTHERS);
		else if (rc == -1) {
			core_log("store", SALES_LOG_WARN, "lost the connection "
			    "that listens for commits: %s; reconnecting", err);
			lost = 1;
			st.drv->close(conn);
			conn = NULL;
		}
	}
	if (conn != NULL)
		st.drv->close(conn);
	return NULL;
}

static void
run_query(struct job *j)
{
	char err[STORE_ERRLEN];
	int constraint = 0;

	err[0] = '\0';
	pthread_mutex_lock(&st.rconn_lock);
	/* Reads write to the -shm too: an error now beats a SIGBUS. */
	if (st.drv->check(st.rconn, err, sizeof(err)) == -1 ||
	    st.drv->exec(st.rconn, &j->stmts[0], &j->res, &constraint, err,
	    sizeof(err)) == -1) {
		core_store_result_free(j->res);
		j->res = NULL;
		job_fail(j, constraint, err);
	}
	pthread_mutex_unlock(&st.rconn_lock);
}

static void *
store_reader(void *arg)
{
	struct job *j;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&st.rlock);
		while (st.rq.head == NULL && !st.rstop)
			pthread_cond_wait(&st.rcond, &st.rlock);
		if ((j = st.rq.head) == NULL) {
			pthread_mutex_unlock(&st.rlock);
			break;
		}
		if ((st.rq.head = j->next) == NULL)
			st.rq.tail = NULL;
		st.rq.len--;
		pthread_mutex_unlock(&st.rlock);

		run_query(j);
		post_done(j, j, 1);
	}
	return NULL;
}

/*
 * A driver that maps its files into memory (SALES_STORE_MAPPED): when a
 * write through the mapping cannot be backed (the file made immutable,
 * a read-only remount, a failed disk) the kernel answers with SIGBUS,
 * which no error code can replace.  Say so in the driver's one line and
 * stop with a status of its own.
 */
static void
store_sigbus(int sig)
{
	(void)sig;
	(void)!write(STDERR_FILENO, bus_msg, bus_len);
	_exit(STORE_EXIT_SIGBUS);
}

static void
store_signals(void)
{
	struct sigaction sa;

	/* Past a file size limit a write must fail with EFBIG, not kill. */
	signal(SIGXFSZ, SIG_IGN);
	if (!(st.drv->flags & SALES_STORE_MAPPED) ||
	    st.drv->mapped_fault == NULL)
		return;
	bus_msg[0] = '\0';
	st.drv->mapped_fault(&st.dcfg, STORE_EXIT_SIGBUS, bus_msg,
	    sizeof(bus_msg));
	bus_len = strnlen(bus_msg, sizeof(bus_msg) - 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = store_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void
driver_config(const struct core_store_config *cfg,
    struct sales_store_driver_config *dcfg)
{
	memset(dcfg, 0, sizeof(*dcfg));
	dcfg->size = sizeof(*dcfg);
	dcfg->path = cfg->path;
	dcfg->url = cfg->url;
	dcfg->check = cfg->check;
}

int
core_store_open(const struct core_store_config *cfg)
{
	pthread_condattr_t ca;
	char err[STORE_ERRLEN];

	if (st.open) {
		core_log("store", SALES_LOG_ERROR, "storage is already open");
		return -1;
	}
	memset(&st, 0, sizeof(st));
	err[0] = '\0';
	if ((st.drv = core_store_driver_load(cfg, err, sizeof(err))) == NULL) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		return -1;
	}
	if (core_base == NULL) {
		core_log("store", SALES_LOG_ERROR,
		    "storage opened before the event loop exists");
		return -1;
	}
	st.cfg = *cfg;
	driver_config(cfg, &st.dcfg);
	st.max_group = cfg->max_group > 0 ? (size_t)cfg->max_group :
	    STORE_MAX_GROUP;
	err[0] = '\0';
	if ((st.wconn = st.drv->open(&st.dcfg, 1, err, sizeof(err))) == NULL) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		goto fail;
	}
	if ((st.rconn = st.drv->open(&st.dcfg, 0, err, sizeof(err))) == NULL) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		goto fail;
	}
	if ((st.done_ev = event_new(core_base, -1, EV_PERSIST, store_deliver,
	    NULL)) == NULL) {
		core_log("store", SALES_LOG_ERROR, "cannot create event");
		goto fail;
	}
	if ((st.watch_ev = event_new(core_base, -1, EV_PERSIST, watch_deliver,
	    NULL)) == NULL) {
		core_log("store", SALES_LOG_ERROR, "cannot create event");
		goto fail;
	}
	atomic_store(&watch_flags, 0);
	store_signals();
	pthread_mutex_init(&st.wlock, NULL);
	/* The writer's probe timer must not jump with the wall clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st.wcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&st.flock, NULL);
	pthread_mutex_init(&st.rlock, NULL);
	pthread_cond_init(&st.rcond, NULL);
	pthread_mutex_init(&st.rconn_lock, NULL);
	pthread_mutex_init(&st.dlock, NULL);
	st.open = 1;
	atomic_store(&store_writable, 1);
	atomic_store(&store_pending, 0);
	atomic_store(&store_commits, 0);
	atomic_store(&store_units, 0);
	if (core_thread_start(&st.writer, store_writer, NULL) == -1) {
		core_log("store", SALES_LOG_ERROR,
		    "cannot start the storage writer thread");
		core_store_close();
		return -1;
	}
	st.writer_started = 1;
	if (core_thread_start(&st.reader, store_reader, NULL) == -1) {
		core_log("store", SALES_LOG_ERROR,
		    "cannot start the storage reader thread");
		core_store_close();
		return -1;
	}
	st.reader_started = 1;
	return 0;
fail:
	if (st.done_ev != NULL)
		event_free(st.done_ev);
	if (st.rconn != NULL)
		st.drv->close(st.rconn);
	if (st.wconn != NULL)
		st.drv->close(st.wconn);
	memset(&st, 0, sizeof(st));
	return -1;
}

int
core_store_plan(const struct core_store_config *cfg)
{
	const struct sales_store_driver *drv;
	struct sales_store_driver_config dcfg;
	char msg[STORE_ERRLEN], err[STORE_ERRLEN];

	msg[0] = err[0] = '\0';
	if ((drv = core_store_driver_load(cfg, err, sizeof(err))) == NULL) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		return -1;
	}
	driver_config(cfg, &dcfg);
	if (drv->plan(&dcfg, msg, sizeof(msg), err, sizeof(err)) == -1) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		return -1;
	}
	core_log("store", SALES_LOG_INFO, "%s", msg);
	return 0;
}

/*
 * Does dir hold a migration file (*.sql)?  For the message when a
 * module ships migrations but none in the driver's dialect.
 */
static int
has_sql(const char *dir)
{
	struct dirent *de;
	DIR *d;
	size_t len;
	int found = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		found = len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0;
	}
	closedir(d);
	return found;
}

/* --check: what loading module would apply to the real database. */
static int
store_plan_module(const char *module, const char *dir)
{
	struct sales_store_migration *list = NULL;
	char err[STORE_ERRLEN];
	size_t n = 0, applied = 0;

	err[0] = '\0';
	if (core_store_migrations_list(dir, &list, &n, err,
	    sizeof(err)) == -1 || st.drv->plan_module(&st.dcfg, module, list,
	    n, &applied, err, sizeof(err)) == -1) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		core_store_migrations_free(list, n);
		return -1;
	}
	core_store_migrations_free(list, n);
	if (applied >= n)
		core_log("store", SALES_LOG_INFO, "module \"%s\": schema up to "
		    "date (%zu migration(s) in \"%s\")", module, n, dir);
	else
		core_log("store", SALES_LOG_INFO, "module \"%s\": %zu "
		    "migration(s) pending, would be applied (from \"%s\")",
		    module, n - applied, dir);
	return 0;
}

/*
 * The folder of module's migrations in drv's dialect, into out: dir (a
 * module loaded by path) or <root>/<module>.  1, or 0 when there is no
 * root, or -1 (logged).  A root that is not a folder is an error, not
 * "no migrations": the module's init would fail later on a missing table.
 */
int
core_store_module_dir(const struct sales_store_driver *drv, const char *root,
    const char *module, const char *dir, char *out, size_t outlen)
{
	char path[4096];
	struct stat sb;

	if (dir == NULL) {
		if (root == NULL)
			return 0;
		if (stat(root, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
			core_log("store", SALES_LOG_ERROR, "[storage] "
			    "migrations \"%s\": not a folder", root);
			return -1;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", root,
		    module) >= sizeof(path))
			goto toolong;
		dir = path;
	}
	/* Another dialect's files are in a subdirectory of its name. */
	if (drv->dialect == NULL) {
		if ((size_t)snprintf(out, outlen, "%s", dir) >= outlen)
			goto toolong;
		return 1;
	}
	if ((size_t)snprintf(out, outlen, "%s/%s", dir, drv->dialect) >=
	    outlen)
		goto toolong;
	if (stat(out, &sb) == -1 && has_sql(dir)) {
		core_log("store", SALES_LOG_ERROR, "module \"%s\" has "
		    "migrations in \"%s\" but none for storage driver \"%s\" "
		    "(\"%s\" is missing); the module must ship its schema in "
		    "that dialect", module, dir, drv->name, out);
		return -1;
	}
	return 1;
toolong:
	core_log("store", SALES_LOG_ERROR, "module \"%s\": migrations path "
	    "too long", module);
	return -1;
}

/*
 * A connection of its own, so that the writer thread keeps its one: the
 * loop is not running yet, and a group queued by an earlier module's
 * init waits on the driver's locks at worst.
 */
int
core_store_migrate(const char *module, const char *dir)
{
	char path[4096], err[STORE_ERRLEN];
	void *conn;
	int rc;

	if (!st.open)
		return 0;	/* no storage in this process: unit tests */
	if ((rc = core_store_module_dir(st.drv, st.cfg.migrations, module,
	    dir, path, sizeof(path))) <= 0)
		return rc;
	dir = path;
	err[0] = '\0';
	if (st.cfg.check && store_plan_module(module, dir) == -1)
		return -1;
	if ((conn = st.drv->open(&st.dcfg, 1, err, sizeof(err))) == NULL) {
		core_log("store", SALES_LOG_ERROR, "%s", err);
		return -1;
	}
	rc = st.drv->migrate(conn, module, dir, err, sizeof(err));
	st.drv->close(conn);
	if (rc == -1)
		core_log("store", SALES_LOG_ERROR, "%s", err);
	return rc;
}

/*
 * Refuses new work, lets both threads finish everything queued, joins
 * them and then delivers every outstanding callback synchronously, here
 * on the calling (loop) thread, before closing the connections.  Call it
 * while the HTTP server still exists, so write callbacks can still
 * answer their clients; run the loop once more afterwards to flush those
 * answers.  Callbacks that submit new work get -1.  Not to be called from
 * inside a storage callback.
 */
void
core_store_close(void)
{
	struct watcher *w;

	if (!st.open)
		return;
	st.closing = 1;
	if (st.listener_started) {
		atomic_store(&st.lstop, 1);
		pthread_join(st.listener, NULL);
	}
	pthread_mutex_lock(&st.wlock);
	st.wstop = 1;
	pthread_cond_signal(&st.wcond);
	pthread_mutex_unlock(&st.wlock);
	pthread_mutex_lock(&st.rlock);
	st.rstop = 1;
	pthread_cond_signal(&st.rcond);
	pthread_mutex_unlock(&st.rlock);
	if (st.writer_started)
		pthread_join(st.writer, NULL);
	if (st.reader_started)
		pthread_join(st.reader, NULL);
	store_deliver(-1, 0, NULL);

	event_free(st.done_ev);
	event_free(st.watch_ev);
	while ((w = st.watchers) != NULL) {
		st.watchers = w->next;
		free(w->module);
		free(w);
	}
	st.drv->close(st.rconn);
	st.drv->close(st.wconn);
	pthread_mutex_destroy(&st.wlock);
	pthread_cond_destroy(&st.wcond);
	pthread_mutex_destroy(&st.rlock);
	pthread_cond_destroy(&st.rcond);
	pthread_mutex_destroy(&st.rconn_lock);
	pthread_mutex_destroy(&st.dlock);
	pthread_mutex_destroy(&st.flock);
	memset(&st, 0, sizeof(st));
}

int
core_store_writable(void)
{
	return st.open && atomic_load(&store_writable);
}

size_t
core_store_fault(char *buf, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (!st.open)
		return 0;
	pthread_mutex_lock(&st.flock);
	n = strlen(st.fault);
	if (n >= len)
		n = len - 1;
	memcpy(buf, st.fault, n);
	buf[n] = '\0';
	pthread_mutex_unlock(&st.flock);
	return n;
}

size_t
core_store_pending(void)
{
	return atomic_load(&store_pending);
}

const char *
core_store_driver_name(void)
{
	return st.drv != NULL ? st.drv->name : core_store_default_driver();
}

void
core_store_metrics(struct sales_buf *b)
{
	struct core_hist c, g;

	pthread_mutex_lock(&hist_lock);
	c = commit_hist;
	g = group_hist;
	pthread_mutex_unlock(&hist_lock);
	core_buf_printf(b, "# HELP salesd_storage_commit_duration_seconds "
	    "time to run and commit a group of write units\n"
	    "# TYPE salesd_storage_commit_duration_seconds histogram\n");
	core_hist_render(b, "salesd_storage_commit_duration_seconds", "",
	    core_hist_seconds, core_hist_nseconds, &c);
	core_buf_printf(b, "# HELP salesd_storage_commit_group_size write "
	    "units per transaction\n"
	    "# TYPE salesd_storage_commit_group_size histogram\n");
	core_hist_render(b, "salesd_storage_commit_group_size", "",
	    group_bounds, sizeof(group_bounds) / sizeof(group_bounds[0]), &g);
}

uint64_t
core_store_commits(void)
{
	return atomic_load(&store_commits);
}

uint64_t
core_store_units(void)
{
	return atomic_load(&store_units);
}

/* Queues a write job for the writer thread; -1 (j freed) when full. */
static int
write_enqueue(struct job *j)
{
	pthread_mutex_lock(&st.wlock);
	if (st.wq.len >= STORE_MAX_QUEUE) {
		pthread_mutex_unlock(&st.wlock);
		job_free(j);
		return -1;
	}
	atomic_fetch_add(&store_pending, 1);
	queue_push(&st.wq, j);
	pthread_cond_signal(&st.wcond);
	pthread_mutex_unlock(&st.wlock);
	return 0;
}

int
core_store_write(const struct sales_store_stmt *stmts, size_t n,
    sales_store_write_cb cb, void *arg)
{
	struct job *j;

	if (!st.open || st.closing || stmts == NULL || n == 0)
		return -1;
	if ((j = job_new(JOB_WRITE, stmts, n)) == NULL)
		return -1;
	j->wcb = cb;
	j->arg = arg;
	return write_enqueue(j);
}

int
core_store_write_rows(const struct sales_store_stmt *stmts, size_t n,
    sales_store_rows_cb cb, void *arg)
{
	struct job *j;

	if (!st.open || st.closing || stmts == NULL || n == 0)
		return -1;
	if ((j = job_new(JOB_WRITE, stmts, n)) == NULL)
		return -1;
	if ((j->rows = calloc(n, sizeof(*j->rows))) == NULL) {
		job_free(j);
		return -1;
	}
	j->rcb = cb;
	j->arg = arg;
	return write_enqueue(j);
}

/*
 * Watchers are called in registration (load) order.  The first one
 * starts the listener of a driver that can listen; it tells them once
 * it listens.  Otherwise they are told once when the loop starts.
 */
int
core_store_watch(const char *module, sales_store_watch_cb cb, void *arg)
{
	struct watcher *w, **pp;

	if (!st.open || st.closing || cb == NULL) {
		core_log(module, SALES_LOG_ERROR, "store_watch: %s",
		    cb == NULL ? "no callback" : "storage is not open");
		return -1;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->module = strdup(module)) == NULL) {
		free(w);
		core_log(module, SALES_LOG_ERROR, "store_watch: out of memory");
		return -1;
	}
	w->cb = cb;
	w->arg = arg;
	for (pp = &st.watchers; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	if (!DRV_HAS(st.drv, listen) || !DRV_HAS(st.drv, wait) ||
	    st.cfg.check) {
		watch_post(WATCH_OTHERS);
		return 0;
	}
	if (st.listener_started)
		return 0;
	if (core_thread_start(&st.listener, store_listener, NULL) == -1) {
		core_log("store", SALES_LOG_ERROR,
		    "cannot start the storage listener thread");
		*pp = NULL;
		free(w->module);
		free(w);
		return -1;
	}
	st.listener_started = 1;
	return 0;
}

void
core_store_forget(const char *module)
{
	struct watcher *w, **pp;

	for (pp = &st.watchers; (w = *pp) != NULL;) {
		if (strcmp(w->module, module) == 0) {
			*pp = w->next;
			free(w->module);
			free(w);
		} else
			pp = &w->next;
	}
}

int
core_store_query(const char *sql, const struct sales_value *params,
    size_t nparams, sales_store_query_cb cb, void *arg)
{
	struct sales_store_stmt s;
	struct job *j;

	if (!st.open || st.closing || sql == NULL)
		return -1;
	s.sql = sql;
	s.params = params;
	s.nparams = nparams;
	if ((j = job_new(JOB_QUERY, &s, 1)) == NULL)
		return -1;
	j->qcb = cb;
	j->arg = arg;
	pthread_mutex_lock(&st.rlock);
	if (st.rq.len >= STORE_MAX_QUEUE) {
		pthread_mutex_unlock(&st.rlock);
		job_free(j);
		return -1;
	}
	atomic_fetch_add(&store_pending, 1);
	queue_push(&st.rq, j);
	pthread_cond_signal(&st.rcond);
	pthread_mutex_unlock(&st.rlock);
	return 0;
}

/* Runs on the calling thread on the reader's connection, under its lock. */
struct sales_store_result *
core_store_query_sync(const char *sql, const struct sales_value *params,
    size_t nparams)
{
	struct sales_store_stmt s;
	struct sales_store_result *res = NULL;
	char err[STORE_ERRLEN];
	int constraint = 0, rc;

	if (!st.open || sql == NULL || (nparams > 0 && params == NULL)) {
		core_log("store", SALES_LOG_ERROR,
		    "query \"%s\": storage is not open", sql ? sql : "");
		return NULL;
	}
	s.sql = sql;
	s.params = params;
	s.nparams = nparams;
	err[0] = '\0';
	pthread_mutex_lock(&st.rconn_lock);
	rc = st.drv->check(st.rconn, err, sizeof(err));
	if (rc == 0)
		rc = st.drv->exec(st.rconn, &s, &res, &constraint, err,
		    sizeof(err));
	pthread_mutex_unlock(&st.rconn_lock);
	if (rc == -1) {
		core_store_result_free(res);
		core_log("store", SALES_LOG_ERROR, "query \"%s\": %s", sql,
		    err);
		return NULL;
	}
	return res;
}

struct sales_store_result *
core_store_result_new(size_t ncols)
{
	struct sales_store_result *res;

	if ((res = calloc(1, sizeof(*res))) == NULL)
		return NULL;
	res->ncols = ncols;
	return res;
}

/* Copies n bytes (plus a NUL) into the result's arena. */
static const char *
result_bytes(struct sales_store_result *res, const char *s, size_t n)
{
	struct chunk *c = res->chunks;
	size_t cap;
	char *p;

	if (n == 0)
		return "";
	if (c == NULL || c->cap - c->used < n + 1) {
		cap = c != NULL && c->cap < 65536 ? c->cap * 2 : 4096;
		if (cap < n + 1)
			cap = n + 1;
		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = res->chunks;
		res->chunks = c;
	}
	p = c->data + c->used;
	memcpy(p, s, n);
	p[n] = '\0';
	c->used += n + 1;
	return p;
}

int
core_store_result_add(struct sales_store_result *res,
    const struct sales_value *row)
{
	struct sales_value *v, *nv;
	size_t i, ncap;

	if (res->ncols == 0)
		return 0;
	if (res->nrows == res->cap) {
		ncap = res->cap ? res->cap * 2 : 16;
		if (ncap > SIZE_MAX / res->ncols / sizeof(*nv))
			return -1;
		if ((nv = realloc(res->vals, ncap * res->ncols *
		    sizeof(*nv))) == NULL)
			return -1;
		res->vals = nv;
		res->cap = ncap;
	}
	v = &res->vals[res->nrows * res->ncols];
	for (i = 0; i < res->ncols; i++) {
		v[i] = row[i];
		if (row[i].type == SALES_VALUE_TEXT ||
		    row[i].type == SALES_VALUE_BLOB) {
			/* Drivers give exact lengths: no strlen rule here. */
			if (row[i].s == NULL)
				v[i].len = 0;
			if ((v[i].s = result_bytes(res, row[i].s, v[i].len)) ==
			    NULL)
				return -1;
		} else
			v[i].s = NULL;
	}
	res->nrows++;
	return 0;
}

void
core_store_result_free(struct sales_store_result *res)
{
	struct chunk *c, *next;

	if (res == NULL)
		return;
	for (c = res->chunks; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(res->vals);
	free(res);
}

size_t
core_store_rows(const struct sales_store_result *res)
{
	return res != NULL ? res->nrows : 0;
}

size_t
core_store_cols(const struct sales_store_result *res)
{
	return res != NULL ? res->ncols : 0;
}

const struct sales_value *
core_store_value(const struct sales_store_result *res, size_t row,
    size_t col)
{
	if (res == NULL || row >= res->nrows || col >= res->ncols)
		return NULL;
	return &res->vals[row * res->ncols + col];
}
