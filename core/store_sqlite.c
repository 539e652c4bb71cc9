/*
 * store_sqlite.c - the SQLite storage driver: connections in WAL mode
 * with synchronous=FULL, a prepared-statement cache per connection,
 * parameter binding, result building and numbered migrations per module.
 *
 * Each connection is used by one thread at a time (store.c sees to it),
 * so connections are opened without SQLite's own mutexes.  It does not
 * decide when to commit or which thread runs what: that is store.c.
 *
 * Storage faults (disk full, I/O errors, a corrupt or foreign file, the
 * file deleted or replaced underneath) are described in one message
 * naming the path, SQLite's error and the fix, so the store can log it
 * as is.  The writer's connection remembers which files it opened
 * (device and inode of the database and its -wal) so that check() can
 * tell when a path no longer leads to them: SQLite would go on writing
 * to the unlinked file and every order would be lost at restart.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

#define SQ_BUCKETS	256
#define SQ_CACHE_MAX	1024		/* statements kept per connection */
#define SQ_BUSY_MS	5000
#define SQ_CHECK_URI	"file:salesd-check?mode=memory&cache=shared"

struct sq_cached {
	struct sq_cached	*next;
	uint64_t		 hash;
	size_t			 len;
	sqlite3_stmt		*stmt;
	char			 sql[];
};

/* A file of the database, as opened: path and identity. */
struct sq_file {
	char			 path[PATH_MAX];
	int			 known;		/* dev and ino recorded */
	dev_t			 dev;
	ino_t			 ino;
};

struct sq_conn {
	sqlite3			*db;
	size_t			 ncached;
	struct sq_cached	*bucket[SQ_BUCKETS];
	struct sq_file		 main;		/* the database file */
	struct sq_file		 wal;		/* its -wal */
	char			 shm[PATH_MAX];	/* its -shm */
	int			 check;		/* --check's in-memory copy */
	int			 writer;	/* the writer, on the real file */
};

static uint64_t
sq_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The SQL after the first statement must be empty (or just ';'). */
static int
sq_tail_empty(const char *tail)
{
	for (; tail != NULL && *tail != '\0'; tail++)
		if (!isspace((unsigned char)*tail) && *tail != ';')
			return 0;
	return 1;
}

/*
 * Writes SQLite's error for rc on c, and for storage faults says what
 * the fault is and how to fix it, naming the database.
 */
static void
sq_error(struct sq_conn *c, int rc, char *err, size_t errlen)
{
	const char *msg = c->db != NULL ? sqlite3_errmsg(c->db) :
	    sqlite3_errstr(rc);
	const char *path = c->main.path;
	int eno = c->db != NULL ? sqlite3_system_errno(c->db) : 0;

	switch (rc & 0xff) {
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		snprintf(err, errlen, "database \"%s\" is not a valid SQLite "
		    "database (corrupt, or another file): %s; restore it from "
		    "a backup, or move it away to start with an empty one",
		    path, msg);
		break;
	case SQLITE_FULL:
		snprintf(err, errlen, "database \"%s\": %s (no space left, or "
		    "a file size limit); free space on its filesystem", path,
		    msg);
		break;
	case SQLITE_IOERR:
		snprintf(err, errlen, "database \"%s\": %s (%s); check the "
		    "disk and the system log", path, msg,
		    eno ? strerror(eno) : "I/O error");
		break;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		snprintf(err, errlen, "database \"%s\": %s%s%s; the file, its "
		    "-wal and -shm and their directory must be writable",
		    path, msg, eno ? ": " : "", eno ? strerror(eno) : "");
		break;
	default:
		/* The one schema error an operator can fix at once. */
		snprintf(err, errlen, "%s%s", msg, strncmp(msg, "no such table",
		    13) == 0 ? " (are the migrations applied?)" : "");
		break;
	}
}

/*
 * Returns the cached statement for sql, preparing and caching it on
 * first use.  *transient is set when the cache is full and the caller
 * must finalize the statement after use.
 */
static sqlite3_stmt *
sq_prepare(struct sq_conn *c, const char *sql, int *transient, char *err,
    size_t errlen)
{
	struct sq_cached *e;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	size_t len = strlen(sql);
	uint64_t h = sq_hash(sql, len);
	unsigned int flags;

	*transient = 0;
	for (e = c->bucket[h % SQ_BUCKETS]; e != NULL; e = e->next)
		if (e->hash == h && e->len == len &&
		    memcmp(e->sql, sql, len) == 0)
			return e->stmt;
	if (len >= INT_MAX) {
		snprintf(err, errlen, "statement too long");
		return NULL;
	}
	flags = c->ncached < SQ_CACHE_MAX ? SQLITE_PREPARE_PERSISTENT : 0;
	if (sqlite3_prepare_v3(c->db, sql, (int)len + 1, flags, &st,
	    &tail) != SQLITE_OK) {
		sq_error(c, sqlite3_extended_errcode(c->db), err, errlen);
		return NULL;
	}
	if (st == NULL) {
		snprintf(err, errlen, "empty statement");
		return NULL;
	}
	if (!sq_tail_empty(tail)) {
		sqlite3_finalize(st);
		snprintf(err, errlen, "more than one statement in \"%.60s\"",
		    sql);
		return NULL;
	}
	if (c->ncached >= SQ_CACHE_MAX ||
	    (e = malloc(sizeof(*e) + len + 1)) == NULL) {
		*transient = 1;
		return st;
	}
	e->hash = h;
	e->len = len;
	e->stmt = st;
	memcpy(e->sql, sql, len + 1);
	e->next = c->bucket[h % SQ_BUCKETS];
	c->bucket[h % SQ_BUCKETS] = e;
	c->ncached++;
	return st;
}

static int
sq_bind(sqlite3_stmt *st, const struct sales_value *p, size_t n, char *err,
    size_t errlen)
{
	size_t i, len;
	int idx, rc;

	if (n != (size_t)sqlite3_bind_parameter_count(st)) {
		snprintf(err, errlen, "statement takes %d parameters, got %zu",
		    sqlite3_bind_parameter_count(st), n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		idx = (int)i + 1;
		len = p[i].len;
		if (p[i].s != NULL && len == 0 &&
		    p[i].type == SALES_VALUE_TEXT)
			len = strlen(p[i].s);
		if (len > INT_MAX) {
			snprintf(err, errlen, "parameter %d too long", idx);
			return -1;
		}
		switch (p[i].type) {
		case SALES_VALUE_NULL:
			rc = sqlite3_bind_null(st, idx);
			break;
		case SALES_VALUE_INT:
			rc = sqlite3_bind_int64(st, idx, p[i].i);
			break;
		case SALES_VALUE_REAL:
			rc = sqlite3_bind_double(st, idx, p[i].d);
			break;
		case SALES_VALUE_TEXT:
			rc = sqlite3_bind_text(st, idx, p[i].s ? p[i].s : "",
			    (int)len, SQLITE_STATIC);
			break;
		case SALES_VALUE_BLOB:
			if (p[i].s == NULL || len == 0)
				rc = sqlite3_bind_zeroblob(st, idx, 0);
			else
				rc = sqlite3_bind_blob(st, idx, p[i].s,
				    (int)len, SQLITE_STATIC);
			break;
		default:
			snprintf(err, errlen, "parameter %d has no valid type",
			    idx);
			return -1;
		}
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "parameter %d: %s", idx,
			    sqlite3_errstr(rc));
			return -1;
		}
	}
	return 0;
}

static int
sq_row(sqlite3_stmt *st, struct sales_value *row, int ncols,
    struct sales_store_result *res)
{
	int i;

	for (i = 0; i < ncols; i++) {
		memset(&row[i], 0, sizeof(row[i]));
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			row[i].type = SALES_VALUE_INT;
			row[i].i = sqlite3_column_int64(st, i);
			break;
		case SQLITE_FLOAT:
			row[i].type = SALES_VALUE_REAL;
			row[i].d = sqlite3_column_double(st, i);
			break;
		case SQLITE_TEXT:
			row[i].type = SALES_VALUE_TEXT;
			row[i].s = (const char *)sqlite3_column_text(st, i);
			row[i].len = (size_t)sqlite3_column_bytes(st, i);
			if (row[i].s == NULL)
				row[i].s = "";
			break;
		case SQLITE_BLOB:
			row[i].type = SALES_VALUE_BLOB;
			row[i].s = sqlite3_column_blob(st, i);
			row[i].len = (size_t)sqlite3_column_bytes(st, i);
			break;
		default:
			row[i].type = SALES_VALUE_NULL;
			break;
		}
	}
	return core_store_result_add(res, row);
}

static int
sq_exec(void *conn, const struct sales_store_stmt *stmt,
    struct sales_store_result **res, int *constraint, char *err,
    size_t errlen)
{
	struct sq_conn *c = conn;
	struct sales_value small[16], *row = small;
	sqlite3_stmt *st;
	int transient, rc, ncols = 0, ret = -1;

	*constraint = 0;
	if (res != NULL)
		*res = NULL;
	if ((st = sq_prepare(c, stmt->sql, &transient, err, errlen)) == NULL)
		return -1;
	if (sq_bind(st, stmt->params, stmt->nparams, err, errlen) == -1)
		goto done;
	if (res != NULL) {
		ncols = sqlite3_column_count(st);
		if ((*res = core_store_result_new((size_t)ncols)) == NULL)
			goto oom;
		if (ncols > (int)(sizeof(small) / sizeof(small[0])) &&
		    (row = calloc((size_t)ncols, sizeof(*row))) == NULL)
			goto oom;
	}
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			if (res != NULL && sq_row(st, row, ncols, *res) == -1)
				goto oom;
			continue;
		}
		if (rc == SQLITE_DONE)
			break;
		sq_error(c, rc, err, errlen);
		*constraint = (rc & 0xff) == SQLITE_CONSTRAINT;
		goto done;
	}
	ret = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	if (row != small)
		free(row);
	if (ret == -1 && res != NULL) {
		core_store_result_free(*res);
		*res = NULL;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (transient)
		sqlite3_finalize(st);
	return ret;
}

/* Runs a fixed, parameterless statement through the cache. */
static int
sq_simple(struct sq_conn *c, const char *sql, char *err, size_t errlen)
{
	struct sales_store_stmt s = { sql, NULL, 0 };
	char dummy[8];
	int constraint;

	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	return sq_exec(c, &s, NULL, &constraint, err, errlen);
}

/* mkdir -p of the directory part of path. */
static int
sq_mkparent(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX], *p;

	if (strlen(path) >= sizeof(buf)) {
		snprintf(err, errlen, "database path \"%s\" is too long", path);
		return -1;
	}
	strcpy(buf, path);
	if ((p = strrchr(buf, '/')) == NULL || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(buf, 0755) == -1 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create directory \"%s\": %s", buf,
	    strerror(errno));
	return -1;
}

static void
sq_close(void *conn)
{
	struct sq_conn *c = conn;
	struct sq_cached *e, *next;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < SQ_BUCKETS; i++)
		for (e = c->bucket[i]; e != NULL; e = next) {
			next = e->next;
			sqlite3_finalize(e->stmt);
			free(e);
		}
	sqlite3_close(c->db);
	free(c);
}

static int
sq_rollback(void *conn)
{
	struct sq_conn *c = conn;

	if (sqlite3_get_autocommit(c->db))
		return 0;
	return sq_simple(c, "ROLLBACK", NULL, 0);
}

/*
 * Switches the file to WAL (which persists in the file, so readers and
 * other processes follow); the pragma answers with the mode it got.
 */
static int
sq_wal(struct sq_conn *c, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	const unsigned char *mode = NULL;
	int rc, ok;

	if ((rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &s,
	    NULL)) != SQLITE_OK) {
		sq_error(c, rc, err, errlen);
		return -1;
	}
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		mode = sqlite3_column_text(s, 0);
	ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	if (mode == NULL)
		sq_error(c, rc, err, errlen);
	else if (!ok)
		snprintf(err, errlen, "database \"%s\": cannot use the WAL "
		    "journal (%s)", c->main.path, (const char *)mode);
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}

static int
sq_file_init(struct sq_file *f, const char *path, const char *suffix,
    char *err, size_t errlen)
{
	if ((size_t)snprintf(f->path, sizeof(f->path), "%s%s", path,
	    suffix) >= sizeof(f->path)) {
		snprintf(err, errlen, "database path \"%s\" is too long", path);
		return -1;
	}
	return 0;
}

/* Records which file the path leads to now; 0, or -1 if none. */
static int
sq_file_note(struct sq_file *f)
{
	struct stat sb;

	if (stat(f->path, &sb) == -1)
		return -1;
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	f->known = 1;
	return 0;
}

/* Does the path still lead to the file that was opened? */
static int
sq_file_check(const struct sq_file *f, char *err, size_t errlen)
{
	struct stat sb;

	if (!f->known)
		return 0;
	if (stat(f->path, &sb) == -1) {
		snprintf(err, errlen, "database file \"%s\" was deleted or "
		    "moved while open (%s): writes would go to the unlinked "
		    "file and be lost at restart, so they are refused; move "
		    "it back, or restart salesd", f->path, strerror(errno));
		return -1;
	}
	if (sb.st_dev != f->dev || sb.st_ino != f->ino) {
		snprintf(err, errlen, "database file \"%s\" was replaced by "
		    "another file while open: writes would go to the old, "
		    "unlinked file and be lost at restart, so they are "
		    "refused; move the original back, or restart salesd to "
		    "use the new one", f->path);
		return -1;
	}
	return 0;
}

/*
 * Before every group, probe and query: the files are still the ones
 * the writer opened (the reader's connection records none), and the
 * -shm, which SQLite maps into memory and writes to even for reads, is
 * writable: through the mapping a failed write is a SIGBUS, not an
 * error.
 */
static int
sq_check(void *conn, char *err, size_t errlen)
{
	struct sq_conn *c = conn;

	if (c->main.known) {
		if (sq_file_check(&c->main, err, errlen) == -1)
			return -1;
		if (!c->wal.known)
			(void)sq_file_note(&c->wal);
		else if (sq_file_check(&c->wal, err, errlen) == -1)
			return -1;
	}
	/*
	 * SQLite opens a file this user cannot write read-only, without a
	 * word (made by root, say): every write would fail as if the unit
	 * were at fault, while /health said all is well.
	 */
	if (c->writer && sqlite3_db_readonly(c->db, "main") == 1) {
		snprintf(err, errlen, "database \"%s\" is read-only for this "
		    "user (uid %d): make the file, its -wal and -shm and their "
		    "directory writable by the user salesd runs as (chown); "
		    "writes resume by themselves", c->main.path, (int)geteuid());
		return -1;
	}
	if (access(c->shm, W_OK) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "database shared-memory file \"%s\" is "
		    "not writable (%s): SQLite would crash the server writing "
		    "to its mapping, so writes are refused; make it writable "
		    "again (chmod, chattr -i)", c->shm, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Writer thread: the database that was opened read-only is writable
 * now; a connection stays as it was opened, so open it again, keeping
 * the old one when the new one is no better.
 */
static void
sq_reopen(struct sq_conn *c)
{
	struct sq_cached *e, *next;
	sqlite3 *db = NULL;
	size_t i;

	if (sqlite3_open_v2(c->main.path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_db_readonly(db, "main") != 0 ||
	    sqlite3_exec(db, "PRAGMA synchronous=FULL; PRAGMA "
	    "foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQ_BUSY_MS);
	for (i = 0; i < SQ_BUCKETS; i++) {
		for (e = c->bucket[i]; e != NULL; e = next) {
			next = e->next;
			sqlite3_finalize(e->stmt);
			free(e);
		}
		c->bucket[i] = NULL;
	}
	c->ncached = 0;
	sqlite3_close_v2(c->db);
	c->db = db;
	core_log("store", SALES_LOG_INFO, "database \"%s\" opened again: "
	    "it is writable now", c->main.path);
}

/*
 * Writer thread, while the store is unwritable: would a commit succeed
 * now?  A real one, as small as can be: page 1 rewritten with the
 * user_version it has (nothing changes), appended to the -wal and
 * synced like any commit.  What fails when the disk is full is exactly
 * that append.
 */
static int
sq_probe(void *conn, char *err, size_t errlen)
{
	struct sq_conn *c = conn;
	sqlite3_stmt *s = NULL;
	char sql[64];
	int rc, v = 0;

	if (c->writer && sqlite3_db_readonly(c->db, "main") == 1 &&
	    access(c->main.path, W_OK) == 0)
		sq_reopen(c);
	if (sq_check(c, err, errlen) == -1)
		return -1;
	if (sq_simple(c, "BEGIN IMMEDIATE", err, errlen) == -1)
		goto fail;
	if ((rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s,
	    NULL)) == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW) {
		sq_error(c, rc, err, errlen);
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v);
	if ((rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
		sq_error(c, rc, err, errlen);
		goto fail;
	}
	if (sq_simple(c, "COMMIT", err, errlen) == -1)
		goto fail;
	return 0;
fail:
	sq_rollback(c);
	return -1;
}

static void *
sq_open(const struct sales_store_driver_config *cfg, int writer, char *err,
    size_t errlen)
{
	struct sq_conn *c;
	struct stat sb;
	const char *path = cfg->path != NULL ? cfg->path : "database/sales.db";
	int rc, flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX;

	/* One in-memory database both connections share, gone at close. */
	if (cfg->check) {
		path = SQ_CHECK_URI;
		flags |= SQLITE_OPEN_URI;
	}
	if (writer && !cfg->check && sq_mkparent(path, err, errlen) == -1)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sq_file_init(&c->main, path, "", err, errlen) == -1 ||
	    sq_file_init(&c->wal, path, "-wal", err, errlen) == -1 ||
	    (size_t)snprintf(c->shm, sizeof(c->shm), "%s-shm", path) >=
	    sizeof(c->shm))
		goto fail;
	/*
	 * A log without its database: SQLite would create an empty file
	 * and replay the log's last transactions onto it.
	 */
	if (writer && !cfg->check && stat(path, &sb) == -1 && errno == ENOENT &&
	    stat(c->wal.path, &sb) == 0) {
		snprintf(err, errlen, "database \"%s\" is missing but its "
		    "write-ahead log \"%s\" exists: the database was deleted "
		    "or moved; restore it, or delete \"%s\" and \"%s\" to "
		    "start with an empty database", path, c->wal.path,
		    c->wal.path, c->shm);
		goto fail;
	}
	c->check = cfg->check;
	c->writer = writer && !cfg->check;
	rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database \"%s\": %s", path,
		    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
	if (writer && !cfg->check && sq_wal(c, err, errlen) == -1)
		goto fail;
	if (sqlite3_exec(c->db, "PRAGMA synchronous=FULL; "
	    "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	/* Queries must never write: they run beside the writer. */
	if (!writer && sqlite3_exec(c->db, "PRAGMA query_only=ON", NULL, NULL,
	    NULL) != SQLITE_OK)
		goto sqlfail;
	if (writer && !cfg->check) {
		if (sq_file_note(&c->main) == -1) {
			snprintf(err, errlen, "database \"%s\": %s", path,
			    strerror(errno));
			goto fail;
		}
		/* There from the first read in WAL mode (sq_wal's). */
		(void)sq_file_note(&c->wal);
	}
	return c;
sqlfail:
	sq_error(c, sqlite3_extended_errcode(c->db), err, errlen);
fail:
	sq_close(c);
	return NULL;
}

static int
sq_begin(void *conn, char *err, size_t errlen)
{
	/* IMMEDIATE: take the write lock now, not halfway through a group. */
	return sq_simple(conn, "BEGIN IMMEDIATE", err, errlen);
}

static int
sq_commit(void *conn, char *err, size_t errlen)
{
	return sq_simple(conn, "COMMIT", err, errlen);
}

static int
sq_savepoint(void *conn, char *err, size_t errlen)
{
	return sq_simple(conn, "SAVEPOINT unit", err, errlen);
}

static int
sq_release(void *conn, char *err, size_t errlen)
{
	return sq_simple(conn, "RELEASE unit", err, errlen);
}

static int
sq_rollback_to(void *conn)
{
	struct sq_conn *c = conn;

	if (sqlite3_get_autocommit(c->db))
		return -1;	/* the transaction itself is gone */
	return sq_simple(c, "ROLLBACK TO unit", NULL, 0);
}

/* Applies one migration file and records it, in one transaction. */
static int
sq_apply(struct sq_conn *c, const char *module, const char *dir,
    const struct sales_store_migration *m, char *err, size_t errlen)
{
	struct sales_value v[3];
	struct sales_store_stmt rec;
	char path[PATH_MAX], *text = NULL, *emsg = NULL, sub[256];
	int constraint;

	snprintf(path, sizeof(path), "%s/%s", dir, m->name);
	if ((text = core_store_migration_read(path, err, errlen)) == NULL)
		return -1;
	if (sq_simple(c, "BEGIN IMMEDIATE", sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "migration \"%s\": %s", path, sub);
		goto fail;
	}
	if (sqlite3_exec(c->db, text, NULL, NULL, &emsg) != SQLITE_OK) {
		snprintf(err, errlen, "migration \"%s\": %s", path,
		    emsg ? emsg : sqlite3_errmsg(c->db));
		goto fail;
	}
	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_INT;
	v[0].i = m->version;
	v[1].type = SALES_VALUE_TEXT;
	v[1].s = m->name;
	v[1].len = strlen(m->name);
	v[2].type = SALES_VALUE_TEXT;
	v[2].s = module;
	v[2].len = strlen(module);
	rec.sql = "INSERT INTO schema_modules(module, version, name, "
	    "applied_at) VALUES (?3, ?1, ?2, "
	    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";
	rec.params = v;
	rec.nparams = 3;
	if (sq_exec(c, &rec, NULL, &constraint, sub, sizeof(sub)) == -1 ||
	    sq_simple(c, "COMMIT", sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "migration \"%s\": %s", path, sub);
		goto fail;
	}
	core_log("store", c->check ? SALES_LOG_DEBUG : SALES_LOG_INFO,
	    "module \"%s\": applied migration \"%s\"%s", module, path,
	    c->check ? " (in memory, for --check)" : "");
	sqlite3_free(emsg);
	free(text);
	return 0;
fail:
	sq_rollback(c);
	sqlite3_free(emsg);
	free(text);
	return -1;
}

/*
 * The bookkeeping: one row per applied migration, per module.  Before
 * migrations belonged to modules, one folder's files were recorded in
 * schema_migrations(version, name, applied_at); that table is kept as
 * it is, and a module's file whose number and file name both match a
 * row of it counts as applied (and is recorded anew), so a database
 * made by the old layout upgrades in place, running nothing twice.
 */
#define SQ_BOOKKEEPING	"CREATE TABLE IF NOT EXISTS schema_modules ("	\
	"module TEXT NOT NULL, version INTEGER NOT NULL, "		\
	"name TEXT NOT NULL, applied_at TEXT NOT NULL, "		\
	"PRIMARY KEY (module, version)) WITHOUT ROWID"
#define SQ_DONE		"SELECT 1 FROM schema_modules "			\
	"WHERE module = ?1 AND version = ?2"
#define SQ_LEGACY	"SELECT 1 FROM sqlite_master WHERE type = "	\
	"'table' AND name = 'schema_migrations'"
#define SQ_ADOPT	"INSERT INTO schema_modules(module, version, "	\
	"name, applied_at) SELECT ?1, version, name, applied_at "	\
	"FROM schema_migrations WHERE version = ?2 AND name = ?3"

/* Runs a statement with (module, version, name); *rows: rows or changes. */
static int
sq_mvn(struct sq_conn *c, const char *sql, const char *module,
    const struct sales_store_migration *m, size_t *rows, char *err,
    size_t errlen)
{
	struct sales_store_result *res = NULL;
	struct sales_value v[3];
	struct sales_store_stmt s;
	int constraint;

	memset(v, 0, sizeof(v));
	v[0].type = SALES_VALUE_TEXT;
	v[0].s = module;
	v[0].len = strlen(module);
	v[1].type = SALES_VALUE_INT;
	v[1].i = m->version;
	v[2].type = SALES_VALUE_TEXT;
	v[2].s = m->name;
	v[2].len = strlen(m->name);
	s.sql = sql;
	s.params = v;
	s.nparams = strstr(sql, "?3") != NULL ? 3 : 2;
	if (sq_exec(c, &s, &res, &constraint, err, errlen) == -1)
		return -1;
	*rows = strncmp(sql, "INSERT", 6) == 0 ?
	    (size_t)sqlite3_changes(c->db) : core_store_rows(res);
	core_store_result_free(res);
	return 0;
}

static int
sq_migrate(void *conn, const char *module, const char *dir, char *err,
    size_t errlen)
{
	struct sq_conn *c = conn;
	struct sales_store_migration *list = NULL;
	struct sales_store_result *res = NULL;
	struct sales_store_stmt q = { SQ_LEGACY, NULL, 0 };
	size_t n = 0, i, rows;
	int constraint, legacy, ret = -1;
	char sub[256];

	if (core_store_migrations_list(dir, &list, &n, err, errlen) == -1)
		return -1;
	if (n == 0)
		return 0;
	if (sq_simple(c, SQ_BOOKKEEPING, sub, sizeof(sub)) == -1 ||
	    sq_exec(c, &q, &res, &constraint, sub, sizeof(sub)) == -1) {
		snprintf(err, errlen, "schema_modules: %s", sub);
		goto done;
	}
	legacy = core_store_rows(res) > 0;
	core_store_result_free(res);
	for (i = 0; i < n; i++) {
		if (sq_mvn(c, SQ_DONE, module, &list[i], &rows, sub,
		    sizeof(sub)) == -1)
			goto fail;
		if (rows > 0)
			continue;
		if (legacy) {
			if (sq_mvn(c, SQ_ADOPT, module, &list[i], &rows, sub,
			    sizeof(sub)) == -1)
				goto fail;
			if (rows > 0) {
				core_log("store", SALES_LOG_INFO, "module "
				    "\"%s\": migration \"%s\" was applied "
				    "before migrations belonged to modules; "
				    "recorded as the module's", module,
				    list[i].name);
				continue;
			}
		}
		if (sq_apply(c, module, dir, &list[i], err, errlen) == -1)
			goto done;
	}
	ret = 0;
	goto done;
fail:
	snprintf(err, errlen, "schema_modules: %s", sub);
done:
	core_store_migrations_free(list, n);
	return ret;
}

/* access(W_OK) on path; -1 with err unless writable or (enoent_ok) absent. */
static int
sq_writable(const char *what, const char *path, int enoent_ok, char *err,
    size_t errlen)
{
	if (access(path, W_OK) == 0 || (enoent_ok && errno == ENOENT))
		return 0;
	snprintf(err, errlen, "%s \"%s\" is not writable by uid %d: %s; "
	    "run salesd as its owner, or fix the permissions", what, path,
	    (int)geteuid(), strerror(errno));
	return -1;
}

/* Does sql (with ?1 module, ?2 version, ?3 name) find a row? */
static int
sq_ro_found(sqlite3 *db, const char *sql, const char *module,
    const struct sales_store_migration *m)
{
	sqlite3_stmt *s = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return 0;	/* no such table: nothing recorded there */
	sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, m->version);
	if (sqlite3_bind_parameter_count(s) >= 3)
		sqlite3_bind_text(s, 3, m->name, -1, SQLITE_STATIC);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

/*
 * How many of module's list the existing database at path has applied,
 * by either bookkeeping.  Opened read-only; unless both a -wal and a
 * -shm exist it is opened immutable, as otherwise SQLite would create
 * the missing one (owned by whoever runs --check, root included, which
 * the server could then not write).  Without a -wal the file is the
 * whole database, so immutable reads it exactly; a -wal alone is not
 * read (sq_plan says so).
 */
static int
sq_applied(const char *path, int logs, const char *module,
    const struct sales_store_migration *list, size_t n, size_t *applied,
    char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char *uri;
	size_t i;
	int rc;

	*applied = 0;
	if ((uri = sqlite3_mprintf("file:%s?mode=ro%s", path,
	    logs ? "" : "&immutable=1")) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
	    NULL);
	sqlite3_free(uri);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master",
		    NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot read database \"%s\": %s", path,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (sq_ro_found(db, SQ_DONE, module, &list[i]) ||
		    sq_ro_found(db, "SELECT 1 FROM schema_migrations WHERE "
		    "?1 IS NOT NULL AND version = ?2 AND name = ?3", module,
		    &list[i]))
			(*applied)++;
	sqlite3_close(db);
	return 0;
}

/* The nearest existing directory of path: where the first mkdir would be. */
static void
sq_parent(const char *path, char *dir, size_t len)
{
	struct stat sb;
	char *slash;

	snprintf(dir, len, "%s", path);
	do {
		if ((slash = strrchr(dir, '/')) == NULL)
			snprintf(dir, len, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	} while (stat(dir, &sb) == -1 && errno == ENOENT && slash != NULL &&
	    slash != dir);
}

static int
sq_plan(const struct sales_store_driver_config *cfg, char *msg, size_t msglen,
    char *err, size_t errlen)
{
	struct stat sb;
	const char *path = cfg->path != NULL ? cfg->path : "database/sales.db";
	char dir[PATH_MAX], wal[PATH_MAX + 8], shm[PATH_MAX + 8];

	sq_parent(path, dir, sizeof(dir));
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	if (stat(path, &sb) == -1) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "database \"%s\": %s", path,
			    strerror(errno));
			return -1;
		}
		if (sq_writable("database directory", dir, 0, err,
		    errlen) == -1)
			return -1;
		snprintf(msg, msglen, "database \"%s\" does not exist yet: "
		    "would be created", path);
		return 0;
	}
	if (sq_writable("database", path, 0, err, errlen) == -1 ||
	    sq_writable("database file", wal, 1, err, errlen) == -1 ||
	    sq_writable("database file", shm, 1, err, errlen) == -1 ||
	    sq_writable("database directory", dir, 0, err, errlen) == -1)
		return -1;
	if (access(wal, F_OK) == 0 && access(shm, F_OK) == -1)
		snprintf(msg, msglen, "database \"%s\": exists and is "
		    "writable; its -wal has no -shm (a copy, or a crash): "
		    "read without the log, which starting recovers, so what "
		    "only the log holds counts as pending here", path);
	else
		snprintf(msg, msglen, "database \"%s\": exists and is "
		    "writable", path);
	return 0;
}

static int
sq_plan_module(const struct sales_store_driver_config *cfg, const char *module,
    const struct sales_store_migration *list, size_t n, size_t *applied,
    char *err, size_t errlen)
{
	struct stat sb;
	const char *path = cfg->path != NULL ? cfg->path : "database/sales.db";
	char wal[PATH_MAX + 8], shm[PATH_MAX + 8];
	int logs;

	*applied = 0;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	if (n == 0 || stat(path, &sb) == -1)
		return 0;	/* nothing yet: every file is pending */
	/*
	 * Reading the log without creating a file needs both: SQLite makes
	 * the one missing.  A -shm alone has no log to read; a -wal alone
	 * is left for the server to recover (sq_plan says so).
	 */
	logs = access(wal, F_OK) == 0 && access(shm, F_OK) == 0;
	return sq_applied(path, logs, module, list, n, applied, err, errlen);
}

/*
 * SQLite maps the -shm into memory and writes the -wal through it: a
 * write that cannot be backed is a SIGBUS (store.c's handler).
 */
static void
sq_mapped_fault(const struct sales_store_driver_config *cfg, int status,
    char *msg, size_t msglen)
{
	const char *path = cfg->path != NULL ? cfg->path : "database/sales.db";

	snprintf(msg, msglen, "fatal: storage fault (SIGBUS) in a "
	    "memory-mapped database file (\"%s-shm\" or \"%s-wal\"): it "
	    "cannot be written (made immutable or read-only, or the disk "
	    "failed); salesd stops with status %d; make the files writable "
	    "again and restart (committed orders are safe)\n", path, path,
	    status);
}

/* migrate-data's source: the tables (and columns) of the modules. */
static int
sq_tables(void *conn, struct sales_store_result **res, char *err,
    size_t errlen)
{
	struct sales_store_stmt s = { "SELECT m.name, p.name FROM "
	    "sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = "
	    "'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND "
	    "m.name NOT IN ('schema_modules', 'schema_migrations') "
	    "ORDER BY m.name, p.cid", NULL, 0 };
	int constraint;

	return sq_exec(conn, &s, res, &constraint, err, errlen);
}

/* The embedded default: built in, never loaded. */
const struct sales_store_driver core_store_embedded = {
	.size = sizeof(struct sales_store_driver),
	.abi = SALES_STORE_DRIVER_ABI,
	.name = "sqlite",
	.dialect = NULL,		/* the migrations' own dialect */
	.flags = SALES_STORE_MAPPED,
	.open = sq_open,
	.close = sq_close,
	.migrate = sq_migrate,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.exec = sq_exec,
	.check = sq_check,
	.probe = sq_probe,
	.plan = sq_plan,
	.plan_module = sq_plan_module,
	.mapped_fault = sq_mapped_fault,
	.tables = sq_tables,
	.bulk = NULL,		/* its triggers cannot be put aside */
};
