/*
 * store_migrate.c - a module's migration files, for every driver: the
 * NNN_name.sql files of a directory in number order, and reading one.
 *
 * It does not apply anything or know a dialect: the driver runs the
 * text (<sales/store_driver.h>, migrate) and records what it applied.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define MIGRATION_MAX	(16 << 20)	/* bytes of one migration file */

static int
migration_cmp(const void *a, const void *b)
{
	const struct sales_store_migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* NNN_name.sql: digits, '_', a name, ".sql". */
static int
migration_name(const char *name, long long *version)
{
	const char *p = name;
	size_t len = strlen(name);
	char *end;

	if (!isdigit((unsigned char)*p))
		return -1;
	errno = 0;
	*version = strtoll(p, &end, 10);
	if (errno != 0 || *end != '_' || len < 5 ||
	    strcmp(name + len - 4, ".sql") != 0 || end + 1 >= name + len - 4)
		return -1;
	return 0;
}

char *
core_store_migration_read(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *text = NULL;
	long size;

	if ((f = fopen(path, "r")) == NULL)
		goto fail;
	if (fseek(f, 0, SEEK_END) == -1 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1)
		goto fail;
	if (size > MIGRATION_MAX) {
		errno = EFBIG;
		goto fail;
	}
	if ((text = malloc((size_t)size + 1)) == NULL)
		goto fail;
	if (fread(text, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	text[size] = '\0';
	fclose(f);
	return text;
fail:
	snprintf(err, errlen, "migration \"%s\": %s", path,
	    errno ? strerror(errno) : "read error");
	free(text);
	if (f != NULL)
		fclose(f);
	return NULL;
}

void
core_store_migrations_free(struct sales_store_migration *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

/* The NNN_*.sql files of dir, in order; -1 with err. */
int
core_store_migrations_list(const char *dir, struct sales_store_migration **out,
    size_t *nout, char *err, size_t errlen)
{
	struct sales_store_migration *list = NULL, *nl;
	struct dirent *de;
	DIR *d;
	size_t n = 0, cap = 0, i;
	long long version;

	*out = NULL;
	*nout = 0;
	if ((d = opendir(dir)) == NULL) {
		/* A module without tables ships no directory. */
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "migrations directory \"%s\": %s", dir,
		    strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 4 ||
		    strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		if (migration_name(de->d_name, &version) == -1) {
			snprintf(err, errlen, "migration \"%s/%s\": name must "
			    "be NNN_name.sql", dir, de->d_name);
			goto fail;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nl = realloc(list, cap * sizeof(*nl))) == NULL)
				goto oom;
			list = nl;
		}
		list[n].version = version;
		if ((list[n].name = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	qsort(list, n, sizeof(*list), migration_cmp);
	for (i = 1; i < n; i++)
		if (list[i].version == list[i - 1].version) {
			snprintf(err, errlen, "migrations \"%s\" and \"%s\" in "
			    "\"%s\" have the same number", list[i - 1].name,
			    list[i].name, dir);
			goto fail;
		}
	closedir(d);
	*out = list;
	*nout = n;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	closedir(d);
	core_store_migrations_free(list, n);
	return -1;
}
