/*
 * sales/store.h - the storage interface as a module sees it.
 *
 * A module owns its tables: its schema is its own numbered migrations
 * (sql/<module>/NNN_*.sql when shipped, <name>.sql/ beside a .so loaded
 * by path; for a driver of another dialect, the subfolder of its name,
 * postgres/), applied by the core before its init and recorded per
 * module.  Another module reads them only through what the owner
 * publishes.  Modules speak SQLite's SQL with positional parameters
 * (?1, ?2, ...); the driver behind it (SQLite by default) is hidden and
 * translates what it must.
 *
 * Writes: core->store_write() takes a unit of one or more statements that
 * succeed or fail together.  Units from many requests are committed in
 * one transaction (group commit), off the loop thread, so one fsync
 * serves many; a failing unit is rolled back alone and does not disturb
 * the others of its group.  The callback runs on the loop once the
 * group is durable (or the unit failed): answer the client only then.
 *
 * Reads: core->store_query() runs one statement off the loop and hands
 * the rows back on the loop.  core->store_query_sync() blocks and is for
 * module init only (rebuilding state before the server takes requests).
 *
 * Rows from writes (ABI 1.6): core->store_write_rows() is store_write
 * whose callback also gets what each statement returned, so a module
 * learns what the database chose inside the transaction (INSERT ...
 * RETURNING id).
 *
 * Commits of other instances (ABI 1.6): instances that share one
 * database form a cluster.  core->store_watch() (init only) asks to be
 * called, on the loop, after write groups were committed to that
 * database, by this instance or by any other.  Calls are coalesced
 * (several commits may give one call) and carry no rows: the module
 * reads what is new from a watermark of its own (the highest id it has
 * handled), so it misses nothing and handles nothing twice whatever
 * the timing.  The watcher is also called once after start-up and once
 * after every reconnect of the core's listener, since commits may have
 * gone unseen meanwhile.  On a database that only this process writes
 * (the embedded SQLite driver) the calls follow this instance's own
 * commits.
 *
 * All SQL text and parameter values are copied by the core at call time.
 * A TEXT parameter with s set and len 0 is read as a NUL-terminated C
 * string.  TEXT and BLOB values in results are NUL-terminated.  Queues
 * are bounded (65,536 units, and as many queries): a module answers 503
 * to a request whose store_write or store_query was refused.
 */
#ifndef SALES_STORE_H
#define SALES_STORE_H

#include <sales/types.h>

enum sales_value_type {
	SALES_VALUE_NULL = 0,
	SALES_VALUE_INT,
	SALES_VALUE_REAL,
	SALES_VALUE_TEXT,
	SALES_VALUE_BLOB
};

/* A parameter or column value.  s/len for TEXT and BLOB. */
struct sales_value {
	enum sales_value_type	 type;
	int64_t			 i;
	double			 d;
	const char		*s;
	size_t			 len;
};

/* One statement of a write unit. */
struct sales_store_stmt {
	const char			*sql;
	const struct sales_value	*params;
	size_t				 nparams;
};

/*
 * Write outcome, on the loop.  status 0: the unit is durably committed.
 * -1: the unit was rolled back (nothing of it is stored); err says why
 * and constraint is 1 when a UNIQUE/PRIMARY KEY/CHECK constraint failed,
 * so a caller can tell a duplicate from a broken disk.
 */
typedef void (*sales_store_write_cb)(int status, int constraint,
    const char *err, void *arg);

/*
 * Query outcome, on the loop.  On success res holds every row; it is
 * valid for the call only.  On failure res is NULL and err says why.
 */
typedef void (*sales_store_query_cb)(const struct sales_store_result *res,
    const char *err, void *arg);

/*
 * store_write_rows outcome, on the loop (ABI 1.6).  status, constraint
 * and err as for sales_store_write_cb.  On status 0, rows[i] (n: the
 * unit's statement count) holds every row statement i returned, or is
 * NULL for a statement that returns none (store_rows gives 0 for it);
 * valid for the call only.  On failure rows is NULL.
 */
typedef void (*sales_store_rows_cb)(int status, int constraint,
    const char *err, const struct sales_store_result *const *rows,
    size_t n, void *arg);

/*
 * store_watch callback, on the loop (ABI 1.6).  others is 0 when the
 * core knows that only this instance's own write groups committed since
 * the last call (their write callbacks run before or after this call);
 * 1 when another instance committed, or when commits may have gone
 * unseen (the first call after start-up, a reconnect): read from the
 * watermark then.
 */
typedef void (*sales_store_watch_cb)(int others, void *arg);

#endif /* SALES_STORE_H */
