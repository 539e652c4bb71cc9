/*
 * postgres_sql.c - the modules' statements, written in the embedded
 * default's SQL, in PostgreSQL's: what differs and the modules use.
 *
 *   ?N, ?		$N (the anonymous ? numbered on from the highest)
 *   INTEGER	BIGINT (SQLite's INTEGER has 64 bits: CAST(x AS INTEGER))
 *   FROM (SELECT ...)	FROM (SELECT ...) AS _dN (before PostgreSQL 16 a
 *			subquery in FROM must have an alias)
 *   INSERT OR IGNORE INTO t ...	INSERT INTO t ... ON CONFLICT DO NOTHING
 *   INSERT OR REPLACE INTO t(c...) ...	INSERT INTO t(c...) ...
 *			ON CONFLICT (t's primary key) DO UPDATE SET
 *			c = EXCLUDED.c for every other column named
 *
 * String literals, quoted identifiers and comments are copied as they
 * are.  Everything else is common SQL and passes unchanged; a statement
 * that is not gets PostgreSQL's own error when it is prepared.  Runs
 * once per statement and connection (the result is prepared and kept).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postgres.h"

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 oom;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static int
word_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '$';
}

/* Does s start with the words of kw (single spaces: any whitespace)? */
static size_t
match_words(const char *s, const char *kw)
{
	const char *p = s;

	while (*kw != '\0') {
		if (*kw == ' ') {
			if (!isspace((unsigned char)*p))
				return 0;
			while (isspace((unsigned char)*p))
				p++;
			kw++;
			continue;
		}
		if (tolower((unsigned char)*p) != tolower((unsigned char)*kw))
			return 0;
		p++;
		kw++;
	}
	return word_char(*p) ? 0 : (size_t)(p - s);
}

/* Length of a quoted run starting at s ('...', "...", with doubling). */
static size_t
quoted(const char *s)
{
	const char *p = s + 1;

	for (; *p != '\0'; p++)
		if (*p == *s) {
			if (p[1] != *s)
				return (size_t)(p + 1 - s);
			p++;
		}
	return (size_t)(p - s);
}

/* Words after a subquery in FROM that are not its alias. */
static int
alias_follows(const char *p)
{
	static const char *const kw[] = {
		"WHERE", "GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING",
		"WINDOW", "UNION", "EXCEPT", "INTERSECT", "JOIN", "LEFT",
		"RIGHT", "FULL", "INNER", "CROSS", "NATURAL", "ON", "USING"
	};
	size_t i, k;

	while (isspace((unsigned char)*p))
		p++;
	if (!word_char(*p) && *p != '"')
		return 0;
	for (k = 0; word_char(p[k]); k++)
		;
	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (strlen(kw[i]) == k && strncasecmp(p, kw[i], k) == 0)
			return 0;
	return 1;
}

/* Is p, after "FROM" or "JOIN" and blanks, "(SELECT"? */
static int
derived_table(const char *out, size_t len, const char *p)
{
	while (len > 0 && isspace((unsigned char)out[len - 1]))
		len--;
	if (!(len >= 4 && (strncasecmp(out + len - 4, "FROM", 4) == 0 ||
	    strncasecmp(out + len - 4, "JOIN", 4) == 0) &&
	    (len == 4 || !word_char(out[len - 5]))))
		return 0;
	for (p++; isspace((unsigned char)*p); p++)
		;
	return match_words(p, "SELECT") > 0;
}

/*
 * The columns named in "t(a, b, c)" after INSERT ... INTO: the table
 * into table, the column names (comma separated, as written) into cols.
 */
static int
insert_target(const char *s, char *table, size_t tlen, char *cols,
    size_t clen)
{
	const char *p = s, *t0, *c0;

	while (isspace((unsigned char)*p))
		p++;
	for (t0 = p; word_char(*p) || *p == '.' || *p == '"'; p++)
		;
	if (p == t0 || (size_t)(p - t0) >= tlen)
		return -1;
	snprintf(table, tlen, "%.*s", (int)(p - t0), t0);
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '(')
		return -1;
	for (c0 = ++p; *p != '\0' && *p != ')'; p++)
		;
	if (*p != ')' || (size_t)(p - c0) >= clen)
		return -1;
	snprintf(cols, clen, "%.*s", (int)(p - c0), c0);
	return 0;
}

/* The primary key's columns of table, "a, b", read from the catalog. */
static int
primary_key(struct pg_conn *c, const char *table, struct sbuf *pk,
    char *err, size_t errlen)
{
	const char *sql = "SELECT a.attname FROM pg_index i JOIN "
	    "pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
	    "ANY(i.indkey) WHERE i.indrelid = $1::regclass AND "
	    "i.indisprimary ORDER BY array_position(i.indkey::int2[], "
	    "a.attnum)";
	const char *vals[1] = { table };
	PGresult *r;
	int i, n;

	r = PQexecParams(c->pg, sql, 1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_result_error(c, r, err, errlen);
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_str(pk, ", ");
		sb_str(pk, PQgetvalue(r, i, 0));
	}
	PQclear(r);
	if (n == 0) {
		snprintf(err, errlen, "INSERT OR REPLACE into \"%s\": the "
		    "table has no primary key to replace on", table);
		return -1;
	}
	return 0;
}

/* " ON CONFLICT (pk) DO UPDATE SET c = EXCLUDED.c, ..." */
static int
upsert(struct pg_conn *c, const char *table, const char *cols,
    struct sbuf *out, char *err, size_t errlen)
{
	struct sbuf pk = { 0 };
	const char *p = cols, *c0;
	char name[128], probe[132], keys[1024];
	int n = 0, ret = -1;

	if (primary_key(c, table, &pk, err, errlen) == -1)
		goto done;
	snprintf(keys, sizeof(keys), ", %s, ", pk.p);
	sb_str(out, " ON CONFLICT (");
	sb_str(out, pk.p);
	sb_str(out, ") DO ");
	while (*p != '\0') {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		for (c0 = p; *p != '\0' && *p != ',' &&
		    !isspace((unsigned char)*p); p++)
			;
		if (p == c0 || (size_t)(p - c0) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(p - c0), c0);
		/* Key columns stay: they are what matched. */
		snprintf(probe, sizeof(probe), ", %s, ", name);
		if (strstr(keys, probe) != NULL)
			continue;
		sb_str(out, n++ ? ", " : "UPDATE SET ");
		sb_str(out, name);
		sb_str(out, " = EXCLUDED.");
		sb_str(out, name);
	}
	if (n == 0)
		sb_str(out, "NOTHING");
	ret = 0;
done:
	free(pk.p);
	return ret;
}

char *
pg_translate(struct pg_conn *c, const char *sql, char *err, size_t errlen)
{
	struct sbuf out = { 0 };
	const char *p = sql;
	char table[128], cols[1024], num[24], *end;
	long maxn = 0, n;
	size_t k;
	int mode = 0;		/* 1: OR IGNORE, 2: OR REPLACE */
	int depth = 0, aliases = 0;
	unsigned long long derived = 0;	/* bit d: paren d is a subquery */

	while (isspace((unsigned char)*p))
		p++;
	if ((k = match_words(p, "INSERT OR IGNORE INTO")) > 0)
		mode = 1;
	else if ((k = match_words(p, "INSERT OR REPLACE INTO")) > 0)
		mode = 2;
	if (mode != 0) {
		if (insert_target(p + k, table, sizeof(table), cols,
		    sizeof(cols)) == -1 && mode == 2) {
			snprintf(err, errlen, "INSERT OR REPLACE: name the "
			    "table's columns (\"%.60s\")", sql);
			return NULL;
		}
		sb_str(&out, "INSERT INTO");
		p += k;
	}
	while (*p != '\0') {
		if (*p == '\'' || *p == '"') {
			k = quoted(p);
			sb_add(&out, p, k);
			p += k;
		} else if (p[0] == '-' && p[1] == '-') {
			for (k = 0; p[k] != '\0' && p[k] != '\n'; k++)
				;
			sb_add(&out, p, k);
			p += k;
		} else if (*p == '?') {
			if (isdigit((unsigned char)p[1])) {
				n = strtol(p + 1, &end, 10);
				p = end;
			} else {
				n = maxn + 1;
				p++;
			}
			if (n > maxn)
				maxn = n;
			snprintf(num, sizeof(num), "$%ld", n);
			sb_str(&out, num);
		} else if (word_char(*p)) {
			for (k = 0; word_char(p[k]); k++)
				;
			if (k == 7 && strncasecmp(p, "INTEGER", 7) == 0)
				sb_str(&out, "BIGINT");
			else
				sb_add(&out, p, k);
			p += k;
		} else if (*p == '(') {
			if (depth < 64 && derived_table(out.p ? out.p : "",
			    out.len, p))
				derived |= 1ULL << depth;
			depth++;
			sb_add(&out, p++, 1);
		} else if (*p == ')') {
			sb_add(&out, p++, 1);
			if (depth > 0 && --depth < 64 &&
			    (derived & (1ULL << depth))) {
				derived &= ~(1ULL << depth);
				if (!alias_follows(p)) {
					snprintf(num, sizeof(num), " AS _d%d",
					    ++aliases);
					sb_str(&out, num);
				}
			}
		} else {
			sb_add(&out, p, 1);
			p++;
		}
	}
	/* The conflict clause goes after the statement, before any ';'. */
	while (out.len > 0 && (isspace((unsigned char)out.p[out.len - 1]) ||
	    out.p[out.len - 1] == ';'))
		out.p[--out.len] = '\0';
	if (mode == 1)
		sb_str(&out, " ON CONFLICT DO NOTHING");
	else if (mode == 2 && upsert(c, table, cols, &out, err,
	    errlen) == -1) {
		free(out.p);
		return NULL;
	}
	if (out.oom || out.p == NULL) {
		free(out.p);
		snprintf(err, errlen, out.oom ? "out of memory" :
		    "empty statement");
		return NULL;
	}
	return out.p;
}
