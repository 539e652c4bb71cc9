/*
 * store_copy.c - salesd migrate-data: copies a database of the embedded
 * driver into another driver's (SQLite into PostgreSQL, for one who
 * outgrows one machine), every table the modules made, row for row,
 * and checks before it commits that the target holds exactly what the
 * source did: per table the row count, and per column the count of
 * values, the sum of the integers and a checksum of every value.
 *
 * It knows no table: the source driver lists them (tables), the target
 * takes the rows as they are, derived ones included, with its triggers
 * put aside (bulk).  Each table is read in key order (its first column,
 * as every shipped table has it) a page at a time, so memory does not
 * grow with the database.  One transaction: a copy that fails or does
 * not verify leaves the target as it was.  Runs before the server
 * starts, on the calling thread, with no storage threads.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

#define COPY_PAGE	5000
#define COPY_ERRLEN	1024

/* What a table holds, summed so that row order does not matter. */
struct col_sum {
	uint64_t	values;		/* not NULL */
	uint64_t	ints;		/* integers, summed modulo 2^64 */
	uint64_t	check;		/* sum of every value's hash */
};

struct table {
	char		*name;
	char		**cols;
	size_t		 ncols;
	uint64_t	 rows[2];	/* source, target */
	struct col_sum	*sum[2];
};

struct copy {
	const struct sales_store_driver	*src, *dst;
	void				*sconn, *dconn;
	struct table			*tables;
	size_t				 ntables;
	char				 err[COPY_ERRLEN];
};

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= 1099511628211ULL;
	}
	return h;
}

/*
 * One value into its column's sums.  A REAL that is a whole number
 * counts as that integer: the same figure whichever way a driver types
 * it.
 */
static void
sum_value(struct col_sum *cs, const struct sales_value *v)
{
	uint64_t h = 14695981039346656037ULL;
	char num[32];
	int64_t i;

	if (v->type == SALES_VALUE_NULL)
		return;
	cs->values++;
	if (v->type == SALES_VALUE_REAL && v->d >= -9.2e18 && v->d <= 9.2e18 &&
	    v->d == (double)(int64_t)v->d) {
		i = (int64_t)v->d;
		goto integer;
	}
	switch (v->type) {
	case SALES_VALUE_INT:
		i = v->i;
		goto integer;
	case SALES_VALUE_REAL:
		snprintf(num, sizeof(num), "r%.17g", v->d);
		h = fnv(h, num, strlen(num));
		break;
	default:
		h = fnv(h, "t", 1);
		h = fnv(h, v->s, v->len);
		break;
	}
	cs->check += h;
	return;
integer:
	cs->ints += (uint64_t)i;
	snprintf(num, sizeof(num), "i%" PRId64, i);
	cs->check += fnv(h, num, strlen(num));
}

/* "name" with any " doubled: table and column names as the source has. */
static void
quote(char *out, size_t outlen, const char *name)
{
	size_t n = 0;

	if (outlen < 3)
		return;
	out[n++] = '"';
	for (; *name != '\0' && n + 3 < outlen; name++) {
		if (*name == '"')
			out[n++] = '"';
		out[n++] = *name;
	}
	out[n++] = '"';
	out[n] = '\0';
}

static void
tables_free(struct copy *cp)
{
	size_t i, k;

	for (i = 0; i < cp->ntables; i++) {
		for (k = 0; k < cp->tables[i].ncols; k++)
			free(cp->tables[i].cols[k]);
		free(cp->tables[i].cols);
		free(cp->tables[i].name);
		free(cp->tables[i].sum[0]);
		free(cp->tables[i].sum[1]);
	}
	free(cp->tables);
}

/* The source's (table, column) rows into cp->tables. */
static int
tables_read(struct copy *cp)
{
	struct sales_store_result *res = NULL;
	const struct sales_value *t, *c;
	struct table *tb = NULL, *nt;
	char **nc;
	size_t r, n;

	if (cp->src->tables(cp->sconn, &res, cp->err, sizeof(cp->err)) == -1)
		return -1;
	n = core_store_rows(res);
	for (r = 0; r < n; r++) {
		t = core_store_value(res, r, 0);
		c = core_store_value(res, r, 1);
		if (t == NULL || c == NULL || t->type != SALES_VALUE_TEXT ||
		    c->type != SALES_VALUE_TEXT)
			continue;
		if (tb == NULL || strcmp(tb->name, t->s) != 0) {
			if ((nt = realloc(cp->tables, (cp->ntables + 1) *
			    sizeof(*nt))) == NULL)
				goto oom;
			cp->tables = nt;
			tb = &cp->tables[cp->ntables++];
			memset(tb, 0, sizeof(*tb));
			if ((tb->name = strdup(t->s)) == NULL)
				goto oom;
		}
		if ((nc = realloc(tb->cols, (tb->ncols + 1) *
		    sizeof(*nc))) == NULL)
			goto oom;
		tb->cols = nc;
		if ((tb->cols[tb->ncols] = strdup(c->s)) == NULL)
			goto oom;
		tb->ncols++;
	}
	core_store_result_free(res);
	for (r = 0; r < cp->ntables; r++)
		if ((cp->tables[r].sum[0] = calloc(cp->tables[r].ncols,
		    sizeof(struct col_sum))) == NULL ||
		    (cp->tables[r].sum[1] = calloc(cp->tables[r].ncols,
		    sizeof(struct col_sum))) == NULL) {
			snprintf(cp->err, sizeof(cp->err), "out of memory");
			return -1;
		}
	return 0;
oom:
	core_store_result_free(res);
	snprintf(cp->err, sizeof(cp->err), "out of memory");
	return -1;
}

/* "SELECT c... FROM t ORDER BY 1 LIMIT ?1 OFFSET ?2", or the INSERT. */
static int
build_sql(const struct table *tb, int insert, char *sql, size_t len)
{
	char q[256];
	size_t i, used;

	quote(q, sizeof(q), tb->name);
	used = (size_t)snprintf(sql, len, insert ? "INSERT INTO %s(" :
	    "SELECT ", q);
	for (i = 0; i < tb->ncols && used < len; i++) {
		quote(q, sizeof(q), tb->cols[i]);
		used += (size_t)snprintf(sql + used, len - used, "%s%s",
		    i ? ", " : "", q);
	}
	if (used < len && insert) {
		used += (size_t)snprintf(sql + used, len - used, ") VALUES (");
		for (i = 0; i < tb->ncols && used < len; i++)
			used += (size_t)snprintf(sql + used, len - used,
			    "%s?%zu", i ? ", " : "", i + 1);
		if (used < len)
			used += (size_t)snprintf(sql + used, len - used, ")");
	} else if (used < len) {
		quote(q, sizeof(q), tb->name);
		used += (size_t)snprintf(sql + used, len - used, " FROM %s "
		    "ORDER BY 1 LIMIT ?1 OFFSET ?2", q);
	}
	return used < len ? 0 : -1;
}

/*
 * Reads table tb of side (0: source, 1: target) a page at a time into
 * its sums; the source's rows are inserted into the target as they go.
 */
static int
table_scan(struct copy *cp, struct table *tb, int side)
{
	const struct sales_store_driver *drv = side ? cp->dst : cp->src;
	void *conn = side ? cp->dconn : cp->sconn;
	struct sales_store_result *res;
	struct sales_store_stmt sel, ins;
	struct sales_value page[2];
	char qsel[8192], qins[8192];
	size_t r, k, n;
	int constraint;

	if (build_sql(tb, 0, qsel, sizeof(qsel)) == -1 ||
	    build_sql(tb, 1, qins, sizeof(qins)) == -1) {
		snprintf(cp->err, sizeof(cp->err), "table \"%s\": too many "
		    "columns", tb->name);
		return -1;
	}
	memset(page, 0, sizeof(page));
	page[0].type = page[1].type = SALES_VALUE_INT;
	page[0].i = COPY_PAGE;
	sel = (struct sales_store_stmt){ qsel, page, 2 };
	ins = (struct sales_store_stmt){ qins, NULL, tb->ncols };
	for (;;) {
		res = NULL;
		if (drv->exec(conn, &sel, &res, &constraint, cp->err,
		    sizeof(cp->err)) == -1)
			return -1;
		n = core_store_rows(res);
		for (r = 0; r < n; r++) {
			for (k = 0; k < tb->ncols; k++)
				sum_value(&tb->sum[side][k],
				    core_store_value(res, r, k));
			tb->rows[side]++;
			if (side == 1)
				continue;
			/* A row's values lie side by side in the result. */
			ins.params = core_store_value(res, r, 0);
			if (cp->dst->exec(cp->dconn, &ins, NULL, &constraint,
			    cp->err, sizeof(cp->err)) == -1) {
				core_store_result_free(res);
				return -1;
			}
		}
		core_store_result_free(res);
		if (n < COPY_PAGE)
			return 0;
		page[1].i += COPY_PAGE;
	}
}

/* The target's table exists and is empty. */
static int
table_empty(struct copy *cp, const struct table *tb)
{
	struct sales_store_result *res = NULL;
	struct sales_store_stmt s;
	const struct sales_value *v;
	char q[256], sql[320];
	int constraint, empty;

	quote(q, sizeof(q), tb->name);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", q);
	s = (struct sales_store_stmt){ sql, NULL, 0 };
	if (cp->dst->exec(cp->dconn, &s, &res, &constraint, cp->err,
	    sizeof(cp->err)) == -1) {
		snprintf(cp->err, sizeof(cp->err), "table \"%s\" is not in "
		    "the target database: load the module that makes it "
		    "([modules] load) and run again", tb->name);
		return -1;
	}
	v = core_store_value(res, 0, 0);
	empty = v != NULL && v->type == SALES_VALUE_INT && v->i == 0;
	core_store_result_free(res);
	if (!empty)
		snprintf(cp->err, sizeof(cp->err), "table \"%s\" of the target "
		    "database is not empty: migrate-data copies into a new "
		    "database only, so that nothing is counted twice",
		    tb->name);
	return empty ? 0 : -1;
}

static int
table_copy(struct copy *cp, struct table *tb)
{
	size_t k;

	if (cp->dst->bulk(cp->dconn, tb->name, 1, cp->err,
	    sizeof(cp->err)) == -1 || table_scan(cp, tb, 0) == -1 ||
	    cp->dst->bulk(cp->dconn, tb->name, 0, cp->err,
	    sizeof(cp->err)) == -1 || table_scan(cp, tb, 1) == -1)
		return -1;
	if (tb->rows[0] != tb->rows[1]) {
		snprintf(cp->err, sizeof(cp->err), "table \"%s\": %" PRIu64
		    " rows read but %" PRIu64 " in the target", tb->name,
		    tb->rows[0], tb->rows[1]);
		return -1;
	}
	for (k = 0; k < tb->ncols; k++)
		if (memcmp(&tb->sum[0][k], &tb->sum[1][k],
		    sizeof(struct col_sum)) != 0) {
			snprintf(cp->err, sizeof(cp->err), "table \"%s\", "
			    "column \"%s\": the target's values differ from "
			    "the source's (count, sum or checksum)", tb->name,
			    tb->cols[k]);
			return -1;
		}
	return 0;
}

static int
copy_migrate(struct copy *cp, const struct core_store_config *cfg,
    const char *const *modules, size_t n)
{
	char dir[4096];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = core_store_module_dir(cp->dst, cfg->migrations,
		    modules[i], NULL, dir, sizeof(dir))) == -1)
			return -1;
		if (rc == 1 && cp->dst->migrate(cp->dconn, modules[i], dir,
		    cp->err, sizeof(cp->err)) == -1)
			return -1;
	}
	return 0;
}

int
core_store_copy(const struct core_store_config *cfg, const char *from,
    const char *const *modules, size_t n)
{
	struct sales_store_driver_config scfg, dcfg;
	struct copy cp;
	struct stat sb;
	size_t i;
	int ret = -1, began = 0;

	memset(&cp, 0, sizeof(cp));
	cp.src = &core_store_embedded;
	if (stat(from, &sb) == -1) {
		snprintf(cp.err, sizeof(cp.err), "source database \"%s\": %s",
		    from, strerror(errno));
		goto done;
	}
	if ((cp.dst = core_store_driver_load(cfg, cp.err,
	    sizeof(cp.err))) == NULL)
		goto done;
	if (cp.dst == cp.src || cp.dst->bulk == NULL ||
	    cp.src->tables == NULL) {
		snprintf(cp.err, sizeof(cp.err), "[storage] driver \"%s\" "
		    "cannot take a copy from \"%s\": set [storage] driver and "
		    "url to the new database", cp.dst->name, cp.src->name);
		goto done;
	}
	memset(&scfg, 0, sizeof(scfg));
	scfg.size = sizeof(scfg);
	scfg.path = from;
	dcfg = scfg;
	dcfg.path = cfg->path;
	dcfg.url = cfg->url;
	if ((cp.sconn = cp.src->open(&scfg, 0, cp.err,
	    sizeof(cp.err))) == NULL ||
	    (cp.dconn = cp.dst->open(&dcfg, 1, cp.err,
	    sizeof(cp.err))) == NULL ||
	    copy_migrate(&cp, cfg, modules, n) == -1 ||
	    tables_read(&cp) == -1)
		goto done;
	for (i = 0; i < cp.ntables; i++)
		if (table_empty(&cp, &cp.tables[i]) == -1)
			goto done;
	if (cp.dst->begin(cp.dconn, cp.err, sizeof(cp.err)) == -1)
		goto done;
	began = 1;
	for (i = 0; i < cp.ntables; i++)
		if (table_copy(&cp, &cp.tables[i]) == -1)
			goto done;
	if (cp.dst->commit(cp.dconn, cp.err, sizeof(cp.err)) == -1)
		goto done;
	began = 0;
	for (i = 0; i < cp.ntables; i++)
		core_log("store", SALES_LOG_INFO, "table \"%s\": %" PRIu64
		    " rows copied; counts and sums match", cp.tables[i].name,
		    cp.tables[i].rows[1]);
	core_log("store", SALES_LOG_INFO, "copied \"%s\" into the %s "
	    "database: %zu tables", from, cp.dst->name, cp.ntables);
	ret = 0;
done:
	if (began)
		cp.dst->rollback(cp.dconn);
	if (ret == -1)
		core_log("store", SALES_LOG_ERROR, "migrate-data: %s%s", cp.err,
		    began ? " (nothing was copied)" : "");
	if (cp.dconn != NULL)
		cp.dst->close(cp.dconn);
	if (cp.sconn != NULL)
		cp.src->close(cp.sconn);
	tables_free(&cp);
	return ret;
}
