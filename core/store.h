/*
 * store.h - the storage interface: a driver table plus the group-commit
 * machinery around it.  store.c owns the writer and reader threads and
 * the hand-off to and from the loop; a driver (store_sqlite.c) only runs
 * statements on its own connections, on those threads.
 */
#ifndef CORE_STORE_H
#define CORE_STORE_H

#include <sales/store.h>

struct core_store_config {
	const char	*driver;	/* "sqlite" */
	const char	*path;		/* database file; parent dir is created */
	/* Root of the shipped modules' migrations: <root>/<module>/NNN_*.sql */
	const char	*migrations;
	int		 max_group;	/* units per transaction */
	/*
	 * --check: open a private in-memory database with the migrations
	 * applied instead of the file, so that modules initialise on an
	 * empty schema and nothing on disk is created or changed.
	 */
	int		 check;
};

/*
 * A driver.  Every call but open/close runs on the one thread that owns
 * the connection; errors are written to err (NUL-terminated).
 */
struct core_store_driver {
	const char *name;
	void	*(*open)(const struct core_store_config *cfg, int writer,
		    char *err, size_t errlen);
	void	 (*close)(void *conn);
	/*
	 * Applies module's NNN_*.sql files of dir (none when dir does not
	 * exist) in order, recording each as (module, version, name).
	 */
	int	 (*migrate)(void *conn, const char *module, const char *dir,
		    char *err, size_t errlen);
	int	 (*begin)(void *conn, char *err, size_t errlen);
	int	 (*commit)(void *conn, char *err, size_t errlen);
	int	 (*rollback)(void *conn);
	int	 (*savepoint)(void *conn, char *err, size_t errlen);
	int	 (*release)(void *conn, char *err, size_t errlen);
	int	 (*rollback_to)(void *conn);
	/* *constraint set to 1 on a constraint violation. */
	int	 (*exec)(void *conn, const struct sales_store_stmt *stmt,
		    struct sales_store_result **res, int *constraint,
		    char *err, size_t errlen);
	/*
	 * check: cheap, before every group and query: is the storage still
	 * the one the writer opened (not deleted or replaced), and can it
	 * be used without risking a SIGBUS?  probe (writer only, while
	 * unwritable): would a commit succeed now?  Both describe a fault
	 * in err with the path and the fix.
	 */
	int	 (*check)(void *conn, char *err, size_t errlen);
	int	 (*probe)(void *conn, char *err, size_t errlen);
	/*
	 * --check, before open: what opening cfg would do, read-only and
	 * creating nothing ("would be created"), in msg; -1 with err when
	 * it could not be done (a directory or file this user cannot
	 * write).  plan_module: the same for one module's migrations
	 * ("2 migration(s) pending"), against the file, read-only.
	 */
	int	 (*plan)(const struct core_store_config *cfg, char *msg,
		    size_t msglen, char *err, size_t errlen);
	int	 (*plan_module)(const struct core_store_config *cfg,
		    const char *module, const char *dir, char *msg,
		    size_t msglen, char *err, size_t errlen);
};

extern const struct core_store_driver core_store_sqlite;

int	core_store_open(const struct core_store_config *cfg);
/* --check: the driver's plan, logged; 0 or -1. */
int	core_store_plan(const struct core_store_config *cfg);
/*
 * Module load, before its init: applies module's migrations from dir
 * (NULL: <migrations>/<module>) on a connection of its own; under
 * --check, first says what would be applied to the real file.  0 or -1
 * (logged).
 */
int	core_store_migrate(const char *module, const char *dir);
/* Stops taking work, commits what is queued, joins the threads. */
void	core_store_close(void);
/* 0 from a storage fault (a failed commit, the file gone) to recovery. */
int	core_store_writable(void);
/* Copies the current fault ("" when none) into buf; returns its length. */
size_t	core_store_fault(char *buf, size_t len);
size_t	core_store_pending(void);	/* units and queries not yet answered */
const char *core_store_driver_name(void);
uint64_t core_store_commits(void);	/* transactions committed */
/* Appends the commit duration and group size histograms (/metrics). */
void	core_store_metrics(struct sales_buf *b);
uint64_t core_store_units(void);	/* units committed */

/* Service-table implementations. */
int	core_store_write(const struct sales_store_stmt *stmts, size_t n,
	    sales_store_write_cb cb, void *arg);
int	core_store_query(const char *sql, const struct sales_value *params,
	    size_t nparams, sales_store_query_cb cb, void *arg);
struct sales_store_result *core_store_query_sync(const char *sql,
	    const struct sales_value *params, size_t nparams);
void	core_store_result_free(struct sales_store_result *res);
size_t	core_store_rows(const struct sales_store_result *res);
size_t	core_store_cols(const struct sales_store_result *res);
const struct sales_value *core_store_value(const struct sales_store_result *res,
	    size_t row, size_t col);

/* Result building, for drivers. */
struct sales_store_result *core_store_result_new(size_t ncols);
int	core_store_result_add(struct sales_store_result *res,
	    const struct sales_value *row);

#endif /* CORE_STORE_H */
