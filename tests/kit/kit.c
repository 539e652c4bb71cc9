/*
 * kit.c - the test kit's life, its loader, config, log, clocks, timers
 * and loop.  The other fake services are kit_<subsystem>.c.
 *
 * The loader does what core/module.c does for one module: dlopen by
 * path, the magic block checked before any module code runs, init with
 * the kit's table, and everything init registered undone when it fails.
 * Unlike the server, the kit unloads (dlclose) at sales_kit_free(), so
 * the next test loads the module with fresh statics.
 *
 * Nothing runs by itself: the loop is sales_kit_run(), and time moves
 * only by sales_kit_advance(), which stops at every timer and upstream
 * deadline on the way and runs the loop there.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "kit.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "ws_events.h"

/* A loop that is never idle after this many callbacks is a bug. */
#define KIT_RUN_MAX	100000

struct sales_kit	*kit_cur;

int
kit_push(struct kit_vec *v, void *p)
{
	void **n;
	size_t cap;

	if (v->n == v->cap) {
		cap = v->cap ? v->cap * 2 : 16;
		if ((n = realloc(v->v, cap * sizeof(*n))) == NULL)
			return -1;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

size_t
kit_count(struct kit_vec *v, int (*match)(const void *, const void *),
    const void *arg)
{
	size_t i, n = 0;

	for (i = 0; i < v->n; i++)
		if (match == NULL || match(v->v[i], arg))
			n++;
	return n;
}

void *
kit_pick(struct kit_vec *v, long i, int (*match)(const void *, const void *),
    const void *arg)
{
	size_t k, n = kit_count(v, match, arg), want;

	if (i < 0)
		i += (long)n;
	if (i < 0 || (size_t)i >= n)
		return NULL;
	want = (size_t)i;
	for (k = 0; k < v->n; k++)
		if (match == NULL || match(v->v[k], arg))
			if (want-- == 0)
				return v->v[k];
	return NULL;
}

char *
kit_memdup(const void *p, size_t len)
{
	char *s;

	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	if (len > 0)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

char *
kit_strdup(const char *s)
{
	return kit_memdup(s, strlen(s));
}

void
kit_queue(struct kit_job *job)
{
	job->next = NULL;
	*kit_cur->jobs_tail = job;
	kit_cur->jobs_tail = &job->next;
}

struct sales_module *
kit_enter(struct sales_module *m)
{
	struct sales_module *prev = kit_cur->current;

	kit_cur->current = m;
	return prev;
}

void
kit_leave(struct sales_module *prev)
{
	kit_cur->current = prev;
}

struct sales_module *
kit_who(void)
{
	return kit_cur->in_init ? kit_cur->in_init : kit_cur->current;
}

const char *
kit_who_name(void)
{
	struct sales_module *m = kit_who();

	return m ? m->name : "module";
}

/* The core's log, as config.c, router.c and the rest call it. */
void
core_logv(const char *who, enum sales_log_level level, const char *fmt,
    va_list ap)
{
	static const char *const names[] = { "error", "warn", "info",
	    "debug" };
	struct sales_buf b = {0};
	const char *lv = (unsigned)level < 4 ? names[level] : "?";

	if (core_buf_printf(&b, "%s: %s: ", who ? who : "core", lv) == -1 ||
	    core_buf_vprintf(&b, fmt, ap) == -1) {
		core_buf_free(&b);
		return;
	}
	fprintf(stderr, "[kit] %s\n", b.data);
	if (kit_cur == NULL || kit_push(&kit_cur->log, b.data) == -1)
		core_buf_free(&b);
}

void
core_log(const char *who, enum sales_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	core_logv(who, level, fmt, ap);
	va_end(ap);
}

void
kit_log(struct sales_module *self, enum sales_log_level level,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	core_logv(self ? self->name : kit_who_name(), level, fmt, ap);
	va_end(ap);
}

size_t
sales_kit_logged(struct sales_kit *kit, const char *text)
{
	size_t i, n = 0;

	for (i = 0; i < kit->log.n; i++)
		if (strstr(kit->log.v[i], text) != NULL)
			n++;
	return n;
}

int
kit_in_init(struct sales_module *self, const char *what)
{
	if (self != NULL && kit_cur->in_init == self)
		return 1;
	core_log(self ? self->name : kit_who_name(), SALES_LOG_ERROR,
	    "%s outside sales_module_init is not allowed", what);
	return 0;
}

struct sales_kit *
sales_kit_new(void)
{
	struct sales_kit *kit;

	if (kit_cur != NULL) {
		fprintf(stderr, "[kit] one kit at a time: free the other "
		    "first\n");
		return NULL;
	}
	if ((kit = calloc(1, sizeof(*kit))) == NULL)
		return NULL;
	kit->wall = SALES_KIT_EPOCH_MS;
	kit->mono = SALES_KIT_MONO_MS;
	kit->jobs_tail = &kit->jobs;
	kit_cur = kit;
	if (kit_store_open() == -1) {
		sales_kit_free(kit);
		return NULL;
	}
	return kit;
}

const struct sales_core *
sales_kit_core(struct sales_kit *kit)
{
	(void)kit;
	return &kit_api;
}

/* Config: the lines of a sales.ini, read by the core's own reader. */

int
sales_kit_config(struct sales_kit *kit, const char *section, const char *key,
    const char *value)
{
	if (section == NULL || key == NULL || value == NULL ||
	    *section == '\0' || *key == '\0' ||
	    strpbrk(section, "\r\n]") != NULL || strpbrk(key, "\r\n=") ||
	    strpbrk(value, "\r\n") != NULL) {
		core_log("kit", SALES_LOG_ERROR, "sales_kit_config: section, "
		    "key and value must be one line each");
		return -1;
	}
	return core_buf_printf(&kit->ini, "[%s]\n%s = %s\n", section, key,
	    value);
}

/*
 * Module name's section, as the server would read it from a file: only
 * that section, so that a key nothing read can be told apart.  The file
 * lives in a directory of its own for the moment of reading, so that no
 * .env beside it is picked up.
 */
static struct core_config *
kit_config_load(struct sales_kit *kit, const char *name)
{
	char dir[] = "/tmp/salesd-kit-XXXXXX", path[64], err[256];
	struct core_config *cfg = NULL;
	const char *p, *key, *next;
	size_t n = strlen(name);
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		core_log("kit", SALES_LOG_ERROR, "cannot make a temp dir");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/sales.ini", dir);
	if ((f = fopen(path, "w")) != NULL) {
		/* sales_kit_config() wrote "[section]\nkey = value\n" each. */
		for (p = kit->ini.data; p != NULL && *p != '\0'; p = next) {
			key = strchr(p, '\n') + 1;
			next = strchr(key, '\n') + 1;
			if (strncmp(p + 1, name, n) == 0 && p[n + 1] == ']')
				fprintf(f, "%.*s", (int)(next - p), p);
		}
		if (fclose(f) == 0 &&
		    (cfg = core_config_load(path, err, sizeof(err))) == NULL)
			core_log("kit", SALES_LOG_ERROR, "%s", err);
		unlink(path);
	}
	rmdir(dir);
	if (cfg != NULL && kit_push(&kit->configs, cfg) == -1) {
		core_config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

const char *
kit_module_name(struct sales_module *self)
{
	return self->name;
}

const char *
kit_config_str(struct sales_module *self, const char *key, const char *def)
{
	return core_config_str(self->cfg, self->name, key, def);
}

int
kit_config_int(struct sales_module *self, const char *key, long long def,
    long long min, long long max, long long *out)
{
	return core_config_int(self->cfg, self->name, key, def, min, max,
	    out);
}

int
kit_config_double(struct sales_module *self, const char *key, double def,
    double min, double max, double *out)
{
	return core_config_double(self->cfg, self->name, key, def, min, max,
	    out);
}

int
kit_config_bool(struct sales_module *self, const char *key, int def,
    int *out)
{
	return core_config_bool(self->cfg, self->name, key, def, out);
}

int
kit_config_url(struct sales_module *self, const char *key, const char *def,
    const char **out)
{
	return core_config_url(self->cfg, self->name, key, def, out);
}

void
kit_config_each(struct sales_module *self,
    void (*cb)(const char *, const char *, void *), void *arg)
{
	core_config_each(self->cfg, self->name, cb, arg);
}

/* Metrics: the core's own registry. */

struct sales_metric *
kit_metric_counter(struct sales_module *self, const char *name,
    const char *help)
{
	if (!kit_in_init(self, "metric_counter"))
		return NULL;
	return core_metric_new(self->name, name, help, 0);
}

struct sales_metric *
kit_metric_gauge(struct sales_module *self, const char *name,
    const char *help)
{
	if (!kit_in_init(self, "metric_gauge"))
		return NULL;
	return core_metric_new(self->name, name, help, 1);
}

/* Read back from the exposition text, as a scraper would. */
double
sales_kit_metric(struct sales_kit *kit, const char *name)
{
	struct sales_buf b = {0}, want = {0};
	const char *p;
	double v = NAN;

	(void)kit;
	core_metrics_render(&b);
	if (b.data != NULL && core_buf_printf(&want, "\nsalesd_%s ",
	    name) == 0 && (p = strstr(b.data, want.data)) != NULL)
		v = strtod(p + want.len, NULL);
	core_buf_free(&want);
	core_buf_free(&b);
	return v;
}

/* Timers and clocks. */

struct sales_timer *
kit_timer_add(long ms, int repeat, void (*cb)(void *), void *arg)
{
	struct sales_timer *t;

	if (ms < 0 || cb == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->due = kit_cur->mono + ms;
	t->ms = ms;
	t->repeat = repeat;
	t->cb = cb;
	t->arg = arg;
	t->owner = kit_who();
	t->seq = ++kit_cur->seq;
	t->next = kit_cur->timers;
	kit_cur->timers = t;
	return t;
}

static void
kit_timer_unlink(struct sales_timer *t)
{
	struct sales_timer **pp;

	for (pp = &kit_cur->timers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
}

void
kit_timer_del(struct sales_timer *t)
{
	if (t == NULL)
		return;
	if (t->firing)
		t->dead = 1;	/* freed once its callback returns */
	else
		kit_timer_unlink(t);
}

static struct sales_timer *
kit_timer_next(void)
{
	struct sales_timer *t, *best = NULL;

	for (t = kit_cur->timers; t != NULL; t = t->next)
		if (!t->dead && !t->firing && (best == NULL ||
		    t->due < best->due ||
		    (t->due == best->due && t->seq < best->seq)))
			best = t;
	return best;
}

static void
kit_timer_fire(struct sales_timer *t)
{
	struct sales_module *prev;

	t->firing = 1;
	prev = kit_enter(t->owner);
	t->cb(t->arg);
	kit_leave(prev);
	t->firing = 0;
	if (t->dead) {
		kit_timer_unlink(t);
		return;
	}
	if (t->repeat) {
		t->due = t->ms > 0 ? t->due + t->ms : kit_cur->mono;
		t->seq = ++kit_cur->seq;
	} else
		t->due = INT64_MAX;	/* fired: allocated until timer_del */
}

/* Cancels and frees the timers of m (a failed init), or all. */
static void
kit_timers_forget(struct sales_module *m)
{
	struct sales_timer **pp = &kit_cur->timers, *t;

	while ((t = *pp) != NULL) {
		if (m == NULL || t->owner == m) {
			*pp = t->next;
			free(t);
		} else
			pp = &t->next;
	}
}

int64_t
kit_now_ms(void)
{
	return kit_cur->wall;
}

int64_t
kit_mono_ms(void)
{
	return kit_cur->mono;
}

void
sales_kit_set_time(struct sales_kit *kit, int64_t ms)
{
	kit->wall = ms;
}

int
sales_kit_run(struct sales_kit *kit)
{
	struct sales_timer *t;
	struct kit_job *job;
	struct sales_module *prev;
	int n;

	for (n = 0; n < KIT_RUN_MAX; n++) {
		if ((job = kit->jobs) != NULL) {
			if ((kit->jobs = job->next) == NULL)
				kit->jobs_tail = &kit->jobs;
			prev = kit_enter(job->owner);
			job->run(job);
			kit_leave(prev);
			job->free(job);
			continue;
		}
		if (kit_httpc_expire() > 0)
			continue;
		if ((t = kit_timer_next()) != NULL && t->due <= kit->mono) {
			kit_timer_fire(t);
			continue;
		}
		return n;
	}
	core_log("kit", SALES_LOG_ERROR, "the loop is never idle (%d "
	    "callbacks): a 0 ms repeating timer, or events that publish "
	    "each other?", KIT_RUN_MAX);
	return -1;
}

int
sales_kit_advance(struct sales_kit *kit, int64_t ms)
{
	struct sales_timer *t;
	int64_t target = kit->mono + (ms > 0 ? ms : 0), next;

	for (;;) {
		if (sales_kit_run(kit) == -1)
			return -1;
		next = kit_httpc_next();
		if ((t = kit_timer_next()) != NULL && t->due < next)
			next = t->due;
		if (next > target)
			break;
		kit->wall += next - kit->mono;
		kit->mono = next;
	}
	kit->wall += target - kit->mono;
	kit->mono = target;
	return sales_kit_run(kit) == -1 ? -1 : 0;
}

/* The loader. */

static int
kit_name(const char *path, char *name, size_t size)
{
	const char *b = strrchr(path, '/');
	size_t n, i;

	b = b ? b + 1 : path;
	n = strlen(b);
	if (n > 3 && strcmp(b + n - 3, ".so") == 0)
		n -= 3;
	if (n == 0 || n >= size)
		return -1;
	for (i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') ||
		    (b[i] >= '0' && b[i] <= '9') || b[i] == '_'))
			return -1;
	memcpy(name, b, n);
	name[n] = '\0';
	return 0;
}

/* What core/module.c refuses, in the same order. */
static const char *
kit_magic_why(const char *name, const struct sales_module_magic *mg)
{
	if (mg->magic != SALES_MODULE_MAGIC_VALUE ||
	    mg->size < offsetof(struct sales_module_magic, requirements))
		return "bad magic block";
	if (mg->abi_major != SALES_ABI_MAJOR ||
	    mg->abi_minor > SALES_ABI_MINOR)
		return "ABI mismatch: rebuild the module against this SDK";
	if (mg->core_size > sizeof(struct sales_core))
		return "built for a newer core";
	if (mg->build_flags != SALES_BUILD_FLAGS)
		return "build flags differ: built for another platform";
	if (mg->name == NULL || strcmp(mg->name, name) != 0)
		return "its magic block names another module";
	return NULL;
}

/* Undoes everything m registered, as the loader does for a failed init. */
static void
kit_forget(struct sales_module *m)
{
	core_router_forget(m->name);
	core_ws_event_forget(m->name);
	core_metrics_forget(m->name);
	kit_bus_forget(m);
	kit_timers_forget(m);
}

int
sales_kit_load(struct sales_kit *kit, const char *path)
{
	const struct sales_module_magic *mg;
	int (*init)(const struct sales_core *, struct sales_module *);
	struct sales_module *m, **pp, *prev;
	const char *why, *used[1];
	char name[64];
	int rc;

	if (kit_name(path, name, sizeof(name)) == -1) {
		core_log("kit", SALES_LOG_ERROR, "\"%s\": a module file is "
		    "NAME.so, NAME of [a-z0-9_]", path);
		return -1;
	}
	for (m = kit->mods; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0) {
			core_log("kit", SALES_LOG_ERROR, "module \"%s\": "
			    "loaded twice", name);
			return -1;
		}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	memcpy(m->name, name, sizeof(m->name));
	used[0] = m->name;
	for (pp = &kit->mods; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = m;		/* freed with the kit, whatever happens next */
	if ((m->cfg = kit_config_load(kit, name)) == NULL)
		return -1;
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		core_log("kit", SALES_LOG_ERROR, "module \"%s\": cannot load "
		    "\"%s\": %s", name, path, dlerror());
		return -1;
	}
	if ((mg = dlsym(m->dl, "sales_module_magic")) == NULL) {
		core_log("kit", SALES_LOG_ERROR, "module \"%s\": no magic "
		    "block", name);
		return -1;
	}
	if ((why = kit_magic_why(name, mg)) != NULL) {
		core_log("kit", SALES_LOG_ERROR, "module \"%s\": %s", name,
		    why);
		return -1;
	}
	*(void **)&init = dlsym(m->dl, "sales_module_init");
	*(void **)&m->fini = dlsym(m->dl, "sales_module_fini");
	if (init == NULL) {
		core_log("kit", SALES_LOG_ERROR, "module \"%s\": no "
		    "sales_module_init", name);
		return -1;
	}
	kit->in_init = m;
	prev = kit_enter(m);
	rc = init(&kit_api, m);
	kit_leave(prev);
	kit->in_init = NULL;
	if (rc != 0) {
		kit_forget(m);
		core_log("kit", SALES_LOG_ERROR, "module \"%s\": init failed "
		    "(see above)", name);
		return -1;
	}
	m->initialised = 1;
	/* Warned as at the server's start (salesd -t refuses them). */
	core_config_report_unknown(m->cfg, used, 1);
	/* As the loader: a module from before ws_event may send any type. */
	if (mg->core_size < offsetof(struct sales_core, ws_event) +
	    sizeof(kit_api.ws_event))
		core_ws_event_declare(m->name, "*");
	return 0;
}

static void
kit_modules_fini(struct sales_kit *kit, struct sales_module *m)
{
	struct sales_module *prev;

	if (m == NULL)
		return;
	kit_modules_fini(kit, m->next);	/* last loaded first */
	if (m->initialised && m->fini != NULL) {
		prev = kit_enter(m);
		m->fini();
		kit_leave(prev);
	}
}

void
sales_kit_free(struct sales_kit *kit)
{
	struct sales_module *m;
	struct kit_job *job;
	size_t i;

	if (kit == NULL)
		return;
	/* As at the server's shutdown: calls end, commits land, then fini. */
	kit_httpc_free();
	while ((job = kit->jobs) != NULL) {
		kit->jobs = job->next;
		job->run(job);
		job->free(job);
	}
	kit->jobs_tail = &kit->jobs;
	kit_modules_fini(kit, kit->mods);
	kit_timers_forget(NULL);
	while ((job = kit->jobs) != NULL) {	/* queued by fini: dropped */
		kit->jobs = job->next;
		job->free(job);
	}
	while ((m = kit->mods) != NULL) {
		kit->mods = m->next;
		core_ws_event_forget(m->name);
		if (m->dl != NULL)
			dlclose(m->dl);
		free(m);
	}
	core_router_free();
	core_metrics_free();
	kit_bus_free();
	kit_http_free();
	kit_store_close();
	for (i = 0; i < kit->configs.n; i++)
		core_config_free(kit->configs.v[i]);
	free(kit->configs.v);
	for (i = 0; i < kit->log.n; i++)
		free(kit->log.v[i]);
	free(kit->log.v);
	core_buf_free(&kit->ini);
	core_buf_free(&kit->json);
	free(kit);
	kit_cur = NULL;
}
