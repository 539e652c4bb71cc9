/*
 * config.c - reads sales.ini with Debian's inih and keeps every entry in
 * file order.  Values may contain ${NAME}: the environment wins, then a
 * .env file beside the config (KEY=VALUE lines, as docker and systemd
 * write them); a name set nowhere expands to "" so the feature that
 * needs it stays on its offline fallback.  Nothing here knows what the
 * keys mean: the core and each module read their own, and whatever no
 * one read is reported, which catches typos.  A relative path in a value
 * is relative to the config file's directory, like the .env, so the
 * working directory salesd is started from never matters.
 */
#include <errno.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "buf.h"
#include "config.h"
#include "log.h"

struct config_entry {
	char	*section;
	char	*key;
	char	*value;
	int	 read;
};

struct core_config {
	char			*path;
	char			*dir;	/* absolute, of the file */
	struct config_entry	*paths;	/* resolved paths */
	size_t			 npaths, cappaths;
	struct config_entry	*e;
	size_t			 n, cap;
	struct config_entry	*env;	/* .env: section unused */
	size_t			 nenv, capenv;
};

static int
config_push(struct config_entry **v, size_t *n, size_t *cap,
    const char *section, const char *key, const char *value)
{
	struct config_entry *p, *e;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;

		if ((p = realloc(*v, ncap * sizeof(*p))) == NULL)
			return -1;
		*v = p;
		*cap = ncap;
	}
	e = &(*v)[*n];
	memset(e, 0, sizeof(*e));
	e->section = strdup(section ? section : "");
	e->key = strdup(key);
	e->value = strdup(value);
	if (!e->section || !e->key || !e->value) {
		free(e->section);
		free(e->key);
		free(e->value);
		return -1;
	}
	(*n)++;
	return 0;
}

static int
config_on_entry(void *user, const char *section, const char *name,
    const char *value)
{
	struct core_config *cfg = user;

	return config_push(&cfg->e, &cfg->n, &cfg->cap, section, name,
	    value) == 0;
}

/* .env: NAME=value, optional "export ", quotes, # comments. */
static void
config_load_env(struct core_config *cfg)
{
	char path[4096], line[4096], *dir, *p, *eq, *k, *v, *end;
	FILE *f;

	snprintf(path, sizeof(path), "%s", cfg->path);
	if ((dir = strrchr(path, '/')) != NULL)
		snprintf(dir + 1, sizeof(path) - (dir + 1 - path), ".env");
	else
		snprintf(path, sizeof(path), ".env");
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f)) {
		for (p = line; isspace((unsigned char)*p); p++)
			;
		if (*p == '#' || *p == '\0')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		if ((eq = strchr(p, '=')) == NULL)
			continue;
		*eq = '\0';
		k = p;
		for (end = eq; end > k && isspace((unsigned char)end[-1]); end--)
			*(end - 1) = '\0';
		for (v = eq + 1; isspace((unsigned char)*v); v++)
			;
		for (end = v + strlen(v); end > v &&
		    isspace((unsigned char)end[-1]); end--)
			;
		*end = '\0';
		if (end - v >= 2 && (*v == '"' || *v == '\'') && end[-1] == *v) {
			end[-1] = '\0';
			v++;
		}
		config_push(&cfg->env, &cfg->nenv, &cfg->capenv, NULL, k, v);
	}
	fclose(f);
}

static const char *
config_lookup_env(struct core_config *cfg, const char *name)
{
	const char *v;
	size_t i;

	if ((v = getenv(name)) != NULL)
		return v;
	for (i = cfg->nenv; i-- > 0; )
		if (strcmp(cfg->env[i].key, name) == 0)
			return cfg->env[i].value;
	return NULL;
}

/* Replaces ${NAME} in every value; -1 on a malformed reference. */
static int
config_expand(struct core_config *cfg, char *err, size_t errlen)
{
	struct config_entry *e;
	struct sales_buf b = {0};
	const char *p, *close, *v;
	char name[128];
	size_t i, n;

	for (i = 0; i < cfg->n; i++) {
		e = &cfg->e[i];
		if (strstr(e->value, "${") == NULL)
			continue;
		b.len = 0;
		if (core_buf_append(&b, "", 0) == -1)
			goto nomem;
		for (p = e->value; *p; ) {
			if (p[0] != '$' || p[1] != '{') {
				if (core_buf_append(&b, p++, 1) == -1)
					goto nomem;
				continue;
			}
			if ((close = strchr(p + 2, '}')) == NULL ||
			    (n = (size_t)(close - p - 2)) == 0 ||
			    n >= sizeof(name)) {
				snprintf(err, errlen, "%s: [%s] %s: malformed "
				    "${NAME}", cfg->path, e->section, e->key);
				core_buf_free(&b);
				return -1;
			}
			memcpy(name, p + 2, n);
			name[n] = '\0';
			if ((v = config_lookup_env(cfg, name)) != NULL &&
			    core_buf_append(&b, v, strlen(v)) == -1)
				goto nomem;
			p = close + 1;
		}
		free(e->value);
		e->value = b.data;
		b.data = NULL;
		b.cap = b.len = 0;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	core_buf_free(&b);
	return -1;
}

/* The file's directory, absolute when it exists. */
static int
config_set_dir(struct core_config *cfg)
{
	char dir[PATH_MAX], real[PATH_MAX], *slash;

	snprintf(dir, sizeof(dir), "%s", cfg->path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	cfg->dir = strdup(realpath(dir, real) != NULL ? real : dir);
	return cfg->dir != NULL ? 0 : -1;
}

struct core_config *
core_config_load(const char *path, char *err, size_t errlen)
{
	struct core_config *cfg;
	int rc;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (config_set_dir(cfg) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = ini_parse(path, config_on_entry, cfg);
	if (rc == -1) {
		snprintf(err, errlen, "cannot open config \"%s\": %s", path,
		    strerror(errno));
		goto fail;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected "
		    "\"[section]\" or \"key = value\", lines up to 200 "
		    "characters)", path, rc);
		goto fail;
	}
	config_load_env(cfg);
	if (config_expand(cfg, err, errlen) == -1)
		goto fail;
	return cfg;
fail:
	core_config_free(cfg);
	return NULL;
}

static void
entries_free(struct config_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].section);
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

void
core_config_free(struct core_config *cfg)
{
	if (cfg == NULL)
		return;
	entries_free(cfg->e, cfg->n);
	entries_free(cfg->env, cfg->nenv);
	entries_free(cfg->paths, cfg->npaths);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

/* The last assignment of a key wins, as in most INI readers. */
static struct config_entry *
config_find(struct core_config *cfg, const char *section, const char *key)
{
	struct config_entry *found = NULL;
	size_t i;

	for (i = 0; i < cfg->n; i++) {
		if (strcmp(cfg->e[i].section, section) == 0 &&
		    strcmp(cfg->e[i].key, key) == 0) {
			cfg->e[i].read = 1;
			found = &cfg->e[i];
		}
	}
	return found;
}

/* Like config_find, but leaves the read mark alone. */
static const char *
config_peek(const struct core_config *cfg, const char *section,
    const char *key)
{
	const char *v = NULL;
	size_t i;

	for (i = 0; i < cfg->n; i++)
		if (strcmp(cfg->e[i].section, section) == 0 &&
		    strcmp(cfg->e[i].key, key) == 0)
			v = cfg->e[i].value;
	return v;
}

int
core_config_changed(const struct core_config *a, const struct core_config *b,
    const char *section, const char *key)
{
	const char *va = config_peek(a, section, key);
	const char *vb = config_peek(b, section, key);

	if (va == NULL || vb == NULL)
		return va != vb;
	return strcmp(va, vb) != 0;
}

/* Keys set, removed or changed from a to b, counted once each. */
size_t
core_config_changes(const struct core_config *a, const struct core_config *b,
    const char *section)
{
	size_t i, n = 0;

	for (i = 0; i < a->n; i++)
		if ((section == NULL ||
		    strcmp(a->e[i].section, section) == 0) &&
		    config_peek(a, a->e[i].section, a->e[i].key) ==
		    a->e[i].value && core_config_changed(a, b,
		    a->e[i].section, a->e[i].key))
			n++;
	for (i = 0; i < b->n; i++)
		if ((section == NULL ||
		    strcmp(b->e[i].section, section) == 0) &&
		    config_peek(b, b->e[i].section, b->e[i].key) ==
		    b->e[i].value && config_peek(a, b->e[i].section,
		    b->e[i].key) == NULL)
			n++;
	return n;
}

const char *
core_config_str(struct core_config *cfg, const char *section, const char *key,
    const char *def)
{
	struct config_entry *e = config_find(cfg, section, key);

	return e ? e->value : def;
}

int
core_config_int(struct core_config *cfg, const char *section, const char *key,
    long long def, long long min, long long max, long long *out)
{
	struct config_entry *e = config_find(cfg, section, key);
	char *end;
	long long v;

	if (e == NULL) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtoll(e->value, &end, 10);
	if (errno || end == e->value || *end != '\0') {
		log_error("[%s] %s: \"%s\" is not an integer", section, key,
		    e->value);
		return -1;
	}
	if (v < min || v > max) {
		log_error("[%s] %s: %lld is out of range (%lld to %lld)",
		    section, key, v, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
core_config_double(struct core_config *cfg, const char *section,
    const char *key, double def, double min, double max, double *out)
{
	struct config_entry *e = config_find(cfg, section, key);
	char *end;
	double v;

	if (e == NULL) {
		*out = def;
		return 0;
	}
	v = strtod(e->value, &end);
	if (end == e->value || *end != '\0' || !isfinite(v)) {
		log_error("[%s] %s: \"%s\" is not a number", section, key,
		    e->value);
		return -1;
	}
	if (v < min || v > max) {
		log_error("[%s] %s: %g is out of range (%g to %g)", section,
		    key, v, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
core_config_bool(struct core_config *cfg, const char *section, const char *key,
    int def, int *out)
{
	static const char *yes[] = { "1", "true", "yes", "on" };
	static const char *no[] = { "0", "false", "no", "off" };
	struct config_entry *e = config_find(cfg, section, key);
	size_t i;

	if (e == NULL) {
		*out = def;
		return 0;
	}
	for (i = 0; i < 4; i++) {
		if (strcasecmp(e->value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(e->value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	log_error("[%s] %s: \"%s\" is not a boolean (true or false)", section,
	    key, e->value);
	return -1;
}

/* True when the authority at s names this machine's loopback. */
static int
url_loopback(const char *s)
{
	size_t n;

	if ((n = strcspn(s, "/?#")) > 0 && memchr(s, '@', n) != NULL)
		s = (const char *)memchr(s, '@', n) + 1;
	if (strncmp(s, "[::1]", 5) == 0)
		return strchr(":/?#", s[5]) != NULL;
	n = strcspn(s, ":/?#");
	if (n == 9 && strncasecmp(s, "localhost", 9) == 0)
		return 1;
	return n >= 4 && strncmp(s, "127.", 4) == 0 &&
	    strspn(s, "0123456789.") == n;
}

int
core_config_url(struct core_config *cfg, const char *section, const char *key,
    const char *def, const char **out)
{
	struct config_entry *e = config_find(cfg, section, key);
	const char *v = e ? e->value : def;
	size_t n, i, scheme;

	if (v == NULL) {
		*out = NULL;
		return 0;
	}
	n = strlen(v);
	scheme = strncmp(v, "http://", 7) == 0 ? 7 :
	    strncmp(v, "https://", 8) == 0 ? 8 : 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
			break;
	/* A scheme, a host, nothing that would need escaping. */
	if (scheme == 0 || v[scheme] == '\0' || v[scheme] == '/' || i < n ||
	    n > 1024) {
		log_error("[%s] %s: \"%s\" is not an http:// or https:// URL",
		    section, key, v);
		return -1;
	}
	if (scheme == 7 && !url_loopback(v + 7))
		log_warn("[%s] %s: \"%s\" is plain http to another host: API "
		    "keys and data cross the network unencrypted; use https://",
		    section, key, v);
	/* Cut in the stored value, so *out stays valid; def is the caller's. */
	if (e != NULL)
		while (n > 0 && e->value[n - 1] == '/')
			e->value[--n] = '\0';
	*out = v;
	return 0;
}

void
core_config_each(struct core_config *cfg, const char *section,
    void (*cb)(const char *key, const char *value, void *arg), void *arg)
{
	size_t i;

	for (i = 0; i < cfg->n; i++) {
		if (strcmp(cfg->e[i].section, section) == 0) {
			cfg->e[i].read = 1;
			cb(cfg->e[i].key, cfg->e[i].value, arg);
		}
	}
}

int
core_config_report_unknown(struct core_config *cfg, const char *const *used,
    size_t nused)
{
	size_t i, k;
	int warnings = 0, known;

	for (i = 0; i < cfg->n; i++) {
		struct config_entry *e = &cfg->e[i];

		for (known = 0, k = 0; k < nused && !known; k++)
			known = strcmp(e->section, used[k]) == 0;
		if (!known) {
			/* Report each unused section once, at its first key. */
			for (k = 0; k < i; k++)
				if (strcmp(cfg->e[k].section, e->section) == 0)
					break;
			if (k == i) {
				log_warn("%s: section [%s] is not used (no "
				    "module of that name is loaded)", cfg->path,
				    e->section);
			}
			continue;
		}
		if (!e->read) {
			log_warn("%s: unknown key \"%s\" in [%s]", cfg->path,
			    e->key, e->section);
			warnings++;
		}
	}
	return warnings;
}

const char *
core_config_dir(struct core_config *cfg)
{
	return cfg->dir;
}

const char *
core_config_resolve(struct core_config *cfg, const char *path)
{
	char buf[PATH_MAX];

	if (path == NULL || path[0] == '/' || path[0] == '\0')
		return path;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", strcmp(cfg->dir, "/") ?
	    cfg->dir : "", path) >= sizeof(buf)) {
		log_error("path \"%s\" is too long", path);
		return NULL;
	}
	if (config_push(&cfg->paths, &cfg->npaths, &cfg->cappaths, NULL, "",
	    buf) == -1) {
		log_error("out of memory");
		return NULL;
	}
	return cfg->paths[cfg->npaths - 1].value;
}

const char *
core_config_path(struct core_config *cfg, const char *section,
    const char *key, const char *def)
{
	return core_config_resolve(cfg, core_config_str(cfg, section, key,
	    def));
}
