/*
 * postgres_migrate.c - a module's PostgreSQL migrations (the files of
 * sql/<module>/postgres/, numbered as the module's others) and --check's
 * plan.
 *
 * Several instances may start at once on one database: every migration
 * runs in its own transaction under one advisory lock, and whether it
 * was applied is decided inside that lock, so each runs exactly once.
 * The bookkeeping is the embedded driver's: schema_modules(module,
 * version, name, applied_at).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres.h"

/* pg_advisory_xact_lock key: "salesmig" */
#define PG_MIGRATE_LOCK	\
	"SELECT pg_advisory_xact_lock(8314892176479267175)"
#define PG_BOOKKEEPING	"CREATE TABLE IF NOT EXISTS schema_modules ("	\
	"module TEXT NOT NULL, version BIGINT NOT NULL, "		\
	"name TEXT NOT NULL, applied_at TEXT NOT NULL, "		\
	"PRIMARY KEY (module, version))"
#define PG_DONE		"SELECT 1 FROM schema_modules "			\
	"WHERE module = $1 AND version = $2"
#define PG_RECORD	"INSERT INTO schema_modules(module, version, "	\
	"name, applied_at) VALUES ($1, $2, $3, to_char(now() AT TIME "	\
	"ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"

/* Runs sql with (module, version[, name]); *rows gets the rows found. */
static int
pg_mv(struct pg_conn *c, const char *sql, const char *module,
    const struct sales_store_migration *m, int *rows, char *err,
    size_t errlen)
{
	const char *vals[3];
	char version[24];
	PGresult *r;
	ExecStatusType s;

	snprintf(version, sizeof(version), "%lld", m->version);
	vals[0] = module;
	vals[1] = version;
	vals[2] = m->name;
	r = PQexecParams(c->pg, sql, strstr(sql, "$3") ? 3 : 2, NULL, vals,
	    NULL, NULL, 0);
	s = PQresultStatus(r);
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		pg_result_error(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	if (rows != NULL)
		*rows = PQntuples(r);
	PQclear(r);
	return 0;
}

/* One migration, if nobody applied it yet, and its record: one commit. */
static int
pg_apply(struct pg_conn *c, const char *module, const char *dir,
    const struct sales_store_migration *m, char *err, size_t errlen)
{
	char path[4096], sub[768], *text = NULL;
	int rows;

	snprintf(path, sizeof(path), "%s/%s", dir, m->name);
	if (pg_simple(c, "BEGIN", sub, sizeof(sub)) == -1 ||
	    pg_simple(c, PG_MIGRATE_LOCK, sub, sizeof(sub)) == -1 ||
	    pg_mv(c, PG_DONE, module, m, &rows, sub, sizeof(sub)) == -1)
		goto fail;
	if (rows > 0)
		return pg_simple(c, "COMMIT", err, errlen);
	if ((text = pg_host->migration_read(path, err, errlen)) == NULL) {
		pg_simple(c, "ROLLBACK", NULL, 0);
		return -1;
	}
	/* The file may hold many statements: the simple protocol runs them. */
	if (pg_simple(c, text, sub, sizeof(sub)) == -1 ||
	    pg_mv(c, PG_RECORD, module, m, NULL, sub, sizeof(sub)) == -1 ||
	    pg_simple(c, "COMMIT", sub, sizeof(sub)) == -1)
		goto fail;
	free(text);
	pg_host->log(c->schema[0] ? SALES_LOG_DEBUG : SALES_LOG_INFO,
	    "module \"%s\": applied migration \"%s\"%s", module, path,
	    c->schema[0] ? " (in a private schema, for --check)" : "");
	return 0;
fail:
	snprintf(err, errlen, "migration \"%s\": %s", path, sub);
	free(text);
	if (PQstatus(c->pg) == CONNECTION_OK)
		pg_simple(c, "ROLLBACK", NULL, 0);
	return -1;
}

int
pg_migrate(void *conn, const char *module, const char *dir, char *err,
    size_t errlen)
{
	struct pg_conn *c = conn;
	struct sales_store_migration *list = NULL;
	size_t n = 0, i;
	char sub[768];
	int ret = -1;

	if (pg_host->migrations_list(dir, &list, &n, err, errlen) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (pg_simple(c, "BEGIN", sub, sizeof(sub)) == -1 ||
	    pg_simple(c, PG_MIGRATE_LOCK, sub, sizeof(sub)) == -1 ||
	    pg_simple(c, PG_BOOKKEEPING, sub, sizeof(sub)) == -1 ||
	    pg_simple(c, "COMMIT", sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "schema_modules: %s", sub);
		pg_simple(c, "ROLLBACK", NULL, 0);
		goto done;
	}
	for (i = 0; i < n; i++)
		if (pg_apply(c, module, dir, &list[i], err, errlen) == -1)
			goto done;
	ret = 0;
done:
	pg_host->migrations_free(list, n);
	return ret;
}

/* --check: can the database be reached, and as what? */
int
pg_plan(const struct sales_store_driver_config *cfg, char *msg,
    size_t msglen, char *err, size_t errlen)
{
	PGconn *pg;

	if ((pg = pg_connect(cfg, err, errlen)) == NULL)
		return -1;
	snprintf(msg, msglen, "database \"%s:%s/%s\": reachable as \"%s\" "
	    "(PostgreSQL %d)", PQhost(pg), PQport(pg), PQdb(pg), PQuser(pg),
	    PQserverVersion(pg));
	PQfinish(pg);
	return 0;
}

/* --check: how many of the module's migrations the database has. */
int
pg_plan_module(const struct sales_store_driver_config *cfg,
    const char *module, const struct sales_store_migration *list, size_t n,
    size_t *applied, char *err, size_t errlen)
{
	struct pg_conn c;
	PGresult *r;
	size_t i;
	int rows, known, ret = -1;

	*applied = 0;
	if (n == 0)
		return 0;
	memset(&c, 0, sizeof(c));
	if ((c.pg = pg_connect(cfg, err, errlen)) == NULL)
		return -1;
	snprintf(c.where, sizeof(c.where), "%s", PQdb(c.pg));
	r = PQexec(c.pg, "SELECT to_regclass('schema_modules') IS NOT NULL");
	known = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	for (i = 0; known && i < n; i++) {
		if (pg_mv(&c, PG_DONE, module, &list[i], &rows, err,
		    errlen) == -1)
			goto done;
		*applied += rows > 0;
	}
	ret = 0;
done:
	PQfinish(c.pg);
	return ret;
}
