/*
 * store.h - the storage interface: a driver (<sales/store_driver.h>)
 * plus the group-commit machinery around it.  store.c owns the writer
 * and reader threads and the hand-off to and from the loop;
 * store_driver.c finds the driver; a driver only runs statements on its
 * own connections, on those threads.
 */
#ifndef CORE_STORE_H
#define CORE_STORE_H

#include <sales/store.h>
#include <sales/store_driver.h>

struct core_store_config {
	/* [storage] driver; NULL or "": the embedded default */
	const char	*driver;
	/* Where loadable drivers are: <driver_dir>/<driver>.so */
	const char	*driver_dir;
	const char	*path;		/* a file driver's database */
	const char	*url;		/* a server driver's connection */
	/* Root of the shipped modules' migrations: <root>/<module>/NNN_*.sql */
	const char	*migrations;
	int		 max_group;	/* units per transaction */
	/*
	 * --check: the driver opens a private, empty database with the
	 * migrations applied instead of the real one, so that modules
	 * initialise on an empty schema and nothing is created or changed.
	 */
	int		 check;
};

/* The embedded default driver (built in, never loaded). */
extern const struct sales_store_driver core_store_embedded;
/* The core's services for drivers, in store_driver.c. */
extern const struct sales_store_host core_store_host;

/*
 * The driver that cfg names: the embedded one, or a shared object
 * loaded (once per process) from driver_dir or from the path given.
 * NULL with err when it cannot be had.
 */
const struct sales_store_driver *core_store_driver_load(
	    const struct core_store_config *cfg, char *err, size_t errlen);
/* The host's migration services (store_migrate.c). */
int	core_store_migrations_list(const char *dir,
	    struct sales_store_migration **list, size_t *n, char *err,
	    size_t errlen);
void	core_store_migrations_free(struct sales_store_migration *list,
	    size_t n);
char	*core_store_migration_read(const char *path, char *err,
	    size_t errlen);

/* The embedded default's name: [storage] driver when unset. */
const char *core_store_default_driver(void);

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
/*
 * The folder of module's migrations for drv: dir, or <root>/<module>
 * when dir is NULL, and its <dialect>/ subfolder for a driver of another
 * dialect, into out.  1, 0 when there is none (no root), -1 (logged).
 */
int	core_store_module_dir(const struct sales_store_driver *drv,
	    const char *root, const char *module, const char *dir, char *out,
	    size_t outlen);
/*
 * salesd migrate-data: copies every table of the embedded driver's
 * database at from into the (empty) tables of the database cfg names,
 * after applying the migrations of modules (names; n of them) there,
 * and verifies counts and sums before it commits.  0 or -1 (logged).
 */
int	core_store_copy(const struct core_store_config *cfg, const char *from,
	    const char *const *modules, size_t n);
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
int	core_store_write_rows(const struct sales_store_stmt *stmts, size_t n,
	    sales_store_rows_cb cb, void *arg);
/*
 * store_watch of module (init only; the API checks).  The watchers of
 * a module whose init failed are dropped by core_store_forget.
 */
int	core_store_watch(const char *module, sales_store_watch_cb cb,
	    void *arg);
void	core_store_forget(const char *module);
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
