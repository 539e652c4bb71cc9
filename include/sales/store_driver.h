/*
 * sales/store_driver.h - the storage driver interface: what a back-end
 * (SQLite, PostgreSQL, ...) implements so that the core's storage
 * (group commit, the writer and reader threads, the hand-off to the
 * loop) runs on it.  Modules never see it: they speak <sales/store.h>.
 *
 * In the manner of PostgreSQL's archive modules, a driver is a table of
 * callbacks.  The embedded default is built into the server; any other
 * is a shared object, loaded with dlopen() only when [storage] driver
 * names it, so a deployment that does not use it never loads its client
 * library.  Such a shared object exports one symbol,
 *
 *	SALES_STORE_DRIVER(host) { ...; return &my_driver; }
 *
 * which gets the core's services for drivers (host, valid for the life
 * of the process) and returns its table, or NULL after logging why.  It
 * includes only the SDK's headers and links against nothing of the
 * core's.  The loader refuses a table whose abi differs from
 * SALES_STORE_DRIVER_ABI or whose name is not the one configured.
 *
 * Threads: the core opens one connection for its writer thread, one for
 * its reader thread and short-lived ones for migrations; every callback
 * taking a connection runs on the one thread that owns it at that
 * moment, never on the loop, and never two at once on one connection.
 * A connection may block (fsync, a network round trip): that is what
 * the threads are for.  Callbacks without a connection (plan,
 * plan_module) run on the loop thread at start-up.
 *
 * Errors: every int callback returns 0 or -1; on -1 it writes one
 * message into err (errlen bytes, NUL-terminated) in the server's style:
 * lowercase, the object in quotes, what is wrong, then the fix.
 */
#ifndef SALES_STORE_DRIVER_H
#define SALES_STORE_DRIVER_H

#include <sales/types.h>
#include <sales/store.h>

#define SALES_STORE_DRIVER_ABI	1

/* What [storage] says, as far as a driver cares. */
struct sales_store_driver_config {
	size_t		 size;		/* sizeof(struct ...) of the core */
	/*
	 * path: a file the driver keeps its data in, relative paths
	 * already resolved (NULL: the driver's default); url: a
	 * connection string, ${VAR} already expanded (NULL when unset).
	 */
	const char	*path;
	const char	*url;
	/*
	 * --check: validate and plan only; open() gets this set and must
	 * give the modules an empty schema to initialise on while leaving
	 * the real database untouched.
	 */
	int		 check;
};

/* A migration file of a module: NNN_name.sql; name is the file name. */
struct sales_store_migration {
	long long	 version;
	char		*name;
};

/* The core's services for drivers.  Thread-safe; append-only. */
struct sales_store_host {
	size_t		 size;
	void	(*log)(enum sales_log_level level, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
	/*
	 * Result sets, built by exec.  result_add copies the row's values
	 * (TEXT and BLOB bytes by their exact len); 0 or -1 (no memory).
	 */
	struct sales_store_result *(*result_new)(size_t ncols);
	int	(*result_add)(struct sales_store_result *res,
		    const struct sales_value *row);
	void	(*result_free)(struct sales_store_result *res);
	size_t	(*result_rows)(const struct sales_store_result *res);
	const struct sales_value *(*result_value)(
		    const struct sales_store_result *res, size_t row,
		    size_t col);
	/*
	 * Migrations: the NNN_name.sql files of dir, sorted by number
	 * (none, and 0, when dir does not exist; -1 with err for a badly
	 * named file or two of one number); freed with migrations_free.
	 * migration_read: a file's text, NUL-terminated, to free();
	 * NULL with err.
	 */
	int	(*migrations_list)(const char *dir,
		    struct sales_store_migration **list, size_t *n,
		    char *err, size_t errlen);
	void	(*migrations_free)(struct sales_store_migration *list,
		    size_t n);
	char	*(*migration_read)(const char *path, char *err,
		    size_t errlen);
	/* Monotonic clock in ms (never jumps). */
	int64_t	(*mono_ms)(void);
};

/* flags */
/*
 * The driver writes through memory mappings of files: a failed write
 * there is a SIGBUS, not an error.  The core then installs a handler
 * that prints mapped_fault's message and exits.
 */
#define SALES_STORE_MAPPED	0x1

struct sales_store_driver {
	size_t		 size;		/* sizeof(struct sales_store_driver) */
	unsigned	 abi;		/* SALES_STORE_DRIVER_ABI */
	const char	*name;		/* as in [storage] driver */
	/*
	 * Migrations: a module's NNN_*.sql files are written in the
	 * embedded default's SQL; a driver speaking another dialect sets
	 * dialect, and the core looks for that module's files in the
	 * subdirectory of that name instead (sql/orders/postgres/).
	 * NULL for the default dialect.
	 */
	const char	*dialect;
	unsigned	 flags;

	/*
	 * writer: the connection that commits; the others only read (a
	 * driver may enforce it).  NULL with err when it cannot be opened.
	 */
	void	*(*open)(const struct sales_store_driver_config *cfg,
		    int writer, char *err, size_t errlen);
	void	 (*close)(void *conn);
	/*
	 * Applies module's NNN_*.sql files of dir (none when dir does not
	 * exist) in number order, each in a transaction of its own with
	 * the row (module, version, name) that records it, skipping those
	 * recorded already.
	 */
	int	 (*migrate)(void *conn, const char *module, const char *dir,
		    char *err, size_t errlen);
	/*
	 * Group commit: begin, units each between savepoint and release
	 * (rollback_to undoes a failed one; -1 when the transaction itself
	 * is gone), commit.  A write group is answered only once commit
	 * returned 0, so commit returns only when the group is durable.
	 * rollback ends any open transaction (0 when there is none).
	 */
	int	 (*begin)(void *conn, char *err, size_t errlen);
	int	 (*commit)(void *conn, char *err, size_t errlen);
	int	 (*rollback)(void *conn);
	int	 (*savepoint)(void *conn, char *err, size_t errlen);
	int	 (*release)(void *conn, char *err, size_t errlen);
	int	 (*rollback_to)(void *conn);
	/*
	 * Runs one statement with positional parameters ?1, ?2, ... (see
	 * <sales/store.h>), preparing it on first use and reusing the
	 * prepared statement after.  res NULL: rows are discarded; else
	 * *res gets every row (built with the host's result_*).
	 * *constraint is set to 1 when a UNIQUE, PRIMARY KEY or CHECK
	 * constraint refused the statement.
	 */
	int	 (*exec)(void *conn, const struct sales_store_stmt *stmt,
		    struct sales_store_result **res, int *constraint,
		    char *err, size_t errlen);
	/*
	 * Health.  check: cheap, before every group and query and once a
	 * second while idle: can the connection still reach the database
	 * it opened?  probe (writer only, while the store is unwritable,
	 * once a second): would a commit succeed now?  The store heals by
	 * itself when it does.
	 */
	int	 (*check)(void *conn, char *err, size_t errlen);
	int	 (*probe)(void *conn, char *err, size_t errlen);
	/*
	 * --check, before open: what opening cfg would do, changing
	 * nothing ("would be created"), into msg; -1 with err when it
	 * could not work.  plan_module: how many of a module's migrations
	 * (list, n: its files in the driver's dialect) the real database
	 * has recorded, into *applied, read-only; the core says the rest.
	 */
	int	 (*plan)(const struct sales_store_driver_config *cfg,
		    char *msg, size_t msglen, char *err, size_t errlen);
	int	 (*plan_module)(const struct sales_store_driver_config *cfg,
		    const char *module,
		    const struct sales_store_migration *list, size_t n,
		    size_t *applied, char *err, size_t errlen);
	/*
	 * SALES_STORE_MAPPED only: the one line (with its newline) a
	 * SIGBUS prints before the process exits with status; called at
	 * open, not in the handler.
	 */
	void	 (*mapped_fault)(const struct sales_store_driver_config *cfg,
		    int status, char *msg, size_t msglen);
	/*
	 * salesd migrate-data.  tables: every table of the database but
	 * the driver's bookkeeping, as rows (table, column), tables in
	 * name order and each one's columns in their order.  bulk: inside
	 * the open transaction, a copy into table starts (on 1) or ends
	 * (0); rows arrive with their derived data, so the table's own
	 * triggers must not run meanwhile.  NULL: the driver cannot be a
	 * source (tables) or a target (bulk) of a copy.
	 */
	int	 (*tables)(void *conn, struct sales_store_result **res,
		    char *err, size_t errlen);
	int	 (*bulk)(void *conn, const char *table, int on, char *err,
		    size_t errlen);
	/*
	 * Cluster (read only when size covers them; NULL for a database
	 * that one process alone writes).  A driver that sets them tells
	 * every instance sharing its database of every write group any of
	 * them committed: its commit, when the transaction wrote, sends
	 * a notice that is delivered only if and when it commits, and its
	 * begin serialises write transactions across instances, so that
	 * values a transaction reads and writes (max(id) + 1) follow
	 * commit order.  The core opens a connection of its own for
	 * listening (writer 0), on a thread of its own, and calls listen
	 * once on it, then wait in a loop: up to timeout_ms for notices,
	 * 0 when none came, 1 when only this process's own commits did,
	 * 2 when another's did too; -1 with err when the connection is
	 * lost (the core then closes it, opens another and listens again;
	 * commits in between are the modules' to read from their
	 * watermarks).
	 */
	int	 (*listen)(void *conn, char *err, size_t errlen);
	int	 (*wait)(void *conn, int timeout_ms, char *err,
		    size_t errlen);
	/*
	 * Optional (read only when size covers it; NULL: the core calls
	 * begin and exec): the group commit's first try, for a driver to
	 * which each call is a network round trip.  It begins and runs
	 * stmts[0 .. n) (the group's units one after another) as begin
	 * and exec of each would, in as few round trips as it can.
	 * res[i] NULL: the rows of statement i are discarded; else
	 * *res[i] gets them.  Returns 0 when every statement ran: the
	 * transaction is open and the core calls commit (or rollback);
	 * 1 when a statement failed or the driver could not run the group
	 * so: nothing of it is stored, no transaction is left open, no
	 * *res[i] is set, and the core runs the group again with a
	 * savepoint per unit; -1 with err when begin failed or the
	 * connection was lost: the group fails as a whole.
	 */
	int	 (*exec_group)(void *conn,
		    const struct sales_store_stmt *stmts, size_t n,
		    struct sales_store_result **res[], char *err,
		    size_t errlen);
};

typedef const struct sales_store_driver *(*sales_store_driver_init_fn)(
    const struct sales_store_host *host);

/* A loadable driver's entry point (the macro below defines it). */
const struct sales_store_driver *sales_store_driver_init(
    const struct sales_store_host *host);

#define SALES_STORE_DRIVER_SYMBOL	"sales_store_driver_init"
#define SALES_STORE_DRIVER(host)					\
	__attribute__((visibility("default")))				\
	const struct sales_store_driver *				\
	sales_store_driver_init(const struct sales_store_host *host)

#endif /* SALES_STORE_DRIVER_H */
