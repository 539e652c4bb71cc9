/*
 * postgres.h - what the PostgreSQL driver's files share: a connection,
 * the core's host table, and the dialect translation.
 */
#ifndef PG_DRIVER_H
#define PG_DRIVER_H

#include <stdint.h>

#include <libpq-fe.h>

#include <sales/store_driver.h>

#define PG_BUCKETS	256
#define PG_PARAMS_SMALL	16

/*
 * A statement's parameters as libpq takes them: numbers and TEXT as
 * text, BLOB as binary.  Small statements need no allocation.
 */
struct pg_args {
	const char	**vals;
	int		 *lens;
	int		 *fmts;
	char		(*num)[32];
	const char	 *vsmall[PG_PARAMS_SMALL];
	int		  lsmall[PG_PARAMS_SMALL];
	int		  fsmall[PG_PARAMS_SMALL];
	char		  nsmall[PG_PARAMS_SMALL][32];
};

/*
 * The cluster's commit order: every write transaction of every
 * instance takes this lock first ("salescmt"), so they commit one at a
 * time and a value read inside one (max(id) + 1) follows commit order.
 * Its commit notifies the channel; the payload names this process, so
 * that a listener can tell its own commits from the others'.
 */
#define PG_COMMIT_LOCK	"SELECT pg_advisory_xact_lock(8314892176479268212)"
#define PG_CHANNEL	"salesd_commit"

/* A statement prepared on one connection, under its own name. */
struct pg_prep {
	struct pg_prep	*next;
	uint64_t	 hash;
	size_t		 len;
	int		 nparams;
	char		 name[24];
	char		 sql[];		/* as the module wrote it */
};

struct pg_conn {
	PGconn		*pg;
	int		 writer;
	char		 schema[64];	/* --check's private schema, or "" */
	unsigned long	 seq;		/* statement names */
	size_t		 nprep;
	struct pg_prep	*bucket[PG_BUCKETS];
	int64_t		 last_reset;	/* ms, monotonic */
	int64_t		 last_used;	/* ms, monotonic: a round trip */
	int		 wrote;		/* the open transaction ran exec */
	int		 lost;		/* ... and a storage fault failed it */
	char		 where[256];	/* host:port/db, for messages */
};

extern const struct sales_store_host *pg_host;

/* postgres.c */
int	pg_simple(struct pg_conn *c, const char *sql, char *err,
	    size_t errlen);
int	pg_exec(void *conn, const struct sales_store_stmt *stmt,
	    struct sales_store_result **res, int *constraint, char *err,
	    size_t errlen);
struct pg_prep *pg_prepare(struct pg_conn *c, const char *sql,
	    int *transient, char *err, size_t errlen);
int	pg_args_set(struct pg_args *a, const struct sales_store_stmt *stmt,
	    char *err, size_t errlen);
void	pg_args_free(struct pg_args *a);
int	pg_result(PGresult *r, struct sales_store_result **res);
void	pg_forget(struct pg_conn *c);
int	pg_session(struct pg_conn *c, char *err, size_t errlen);
int	pg_check(void *conn, char *err, size_t errlen);
PGconn	*pg_connect(const struct sales_store_driver_config *cfg, char *err,
	    size_t errlen);
void	pg_result_error(struct pg_conn *c, PGresult *r, char *err,
	    size_t errlen);

/*
 * postgres_sql.c: the modules' SQL (SQLite's flavour: ?N parameters,
 * INSERT OR REPLACE / OR IGNORE, INTEGER as 64 bits) in PostgreSQL's.
 * Returns a malloc'd statement or NULL with err.
 */
char	*pg_translate(struct pg_conn *c, const char *sql, char *err,
	    size_t errlen);

/* postgres_pipeline.c */
int	pg_exec_group(void *conn, const struct sales_store_stmt *stmts,
	    size_t n, struct sales_store_result **res[], char *err,
	    size_t errlen);

/* postgres_migrate.c */
int	pg_migrate(void *conn, const char *module, const char *dir,
	    char *err, size_t errlen);
int	pg_plan(const struct sales_store_driver_config *cfg, char *msg,
	    size_t msglen, char *err, size_t errlen);
int	pg_plan_module(const struct sales_store_driver_config *cfg,
	    const char *module, const struct sales_store_migration *list,
	    size_t n, size_t *applied, char *err, size_t errlen);

/* postgres_secret.c: the url's password out of every message. */
void	pg_secret_url(const char *url);
void	pg_secret_hide(char *msg, size_t size);
void	pg_secret_parse_error(char *msg, size_t size, const char *url);

#endif /* PG_DRIVER_H */
