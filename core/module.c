/*
 * module.c - loads modules as sales.ini [modules] says.
 *
 * Names are [a-z0-9_]+ and become "<dir>/<name>.so", so a name can never
 * reach outside the module directory.  An entry with a '/' is a path to
 * a .so instead (relative to the config's directory), as Redis's
 * loadmodule takes one: the module's name is the file's base name
 * without ".so", under the same rule.  The magic block is read with
 * dlsym before any module code runs (dlopen runs no constructors of ours:
 * modules are built without them), so a module built for another ABI is
 * refused with both versions named, as PostgreSQL does.  Nothing is ever
 * unloaded while the server runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* dladdr */
#endif
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "router.h"
#include "timer.h"
#include "store.h"
#include "ws.h"
#include "ws_events.h"

struct sales_module {
	char				 name[CORE_MODULE_NAME_MAX + 1];
	void				*dl;
	const struct sales_module_magic	*magic;
	void				*base;	/* where dlopen mapped it */
	void				(*fini)(void);
	int				(*reload)(struct sales_module *,
					    enum sales_reload_step);
	struct core_config		*cfg;
	struct core_config		*old;	/* during a reload check */
	int				 initialised;
};

static struct sales_module	**mods;
static size_t			  nmods;
static struct sales_module	 *in_init;
static const char		 *load_rest;	/* what load lists after */

static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > CORE_MODULE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

int
core_module_check_magic(const char *name, const struct sales_module_magic *mg,
    char *why, size_t whylen)
{
	/* Blocks from before a field was appended are shorter. */
	if (mg->magic != SALES_MODULE_MAGIC_VALUE ||
	    mg->size < offsetof(struct sales_module_magic, requirements)) {
		snprintf(why, whylen, "bad magic block (not a salesd module, "
		    "or built with a broken SDK)");
		return -1;
	}
	if (mg->abi_major != SALES_ABI_MAJOR ||
	    mg->abi_minor > SALES_ABI_MINOR) {
		snprintf(why, whylen, "ABI mismatch (server %d.%d, module "
		    "%d.%d); rebuild the module against this server's SDK",
		    SALES_ABI_MAJOR, SALES_ABI_MINOR, mg->abi_major,
		    mg->abi_minor);
		return -1;
	}
	if (mg->core_size > sizeof(struct sales_core)) {
		snprintf(why, whylen, "built for a newer core (its service "
		    "table is %u bytes, this server's %zu)", mg->core_size,
		    sizeof(struct sales_core));
		return -1;
	}
	if (mg->build_flags != SALES_BUILD_FLAGS) {
		snprintf(why, whylen, "build flags differ (server %#x, module "
		    "%#x): built for another platform", SALES_BUILD_FLAGS,
		    mg->build_flags);
		return -1;
	}
	if (mg->name == NULL || strcmp(mg->name, name) != 0) {
		snprintf(why, whylen, "calls itself \"%s\"; rename the file or "
		    "fix SALES_MODULE_MAGIC", mg->name ? mg->name : "");
		return -1;
	}
	return 0;
}

/*
 * Undoes everything m registered: routes, WebSocket handlers and event
 * types, subscriptions, metrics, timers.  Harmless when done twice.
 */
static void
module_forget(struct sales_module *m)
{
	core_router_forget(m->name);
	core_ws_forget(m->name);
	core_ws_event_forget(m->name);
	core_bus_forget(m->name);
	core_metrics_forget(m->name);
	core_timer_forget(m->name);
	core_store_forget(m->name);
}

/* Does the rest of [modules] load name module (by name or path)? */
static int
listed_later(const char *module)
{
	const char *p = load_rest, *s, *b;
	size_t n, bn;

	for (; p != NULL && *p != '\0'; p += n) {
		p += strspn(p, " \t,");
		s = p;
		n = strcspn(p, " \t,");
		for (b = s + n; b > s && b[-1] != '/'; b--)
			;
		bn = (size_t)(s + n - b);
		if (bn > 3 && strncmp(b + bn - 3, ".so", 3) == 0)
			bn -= 3;
		if (bn == strlen(module) && strncmp(b, module, bn) == 0)
			return 1;
	}
	return 0;
}

/*
 * The magic block's requires: each must be loaded (and initialised)
 * already.  Refused rather than reordered, so that [modules] load stays
 * the order things happen in; the line says what to change.
 */
static int
module_requires(const char *name, const struct sales_module_magic *mg)
{
	const char *p, *s;
	size_t n, i;
	int found;

	if (mg->size < offsetof(struct sales_module_magic, requirements) +
	    sizeof(mg->requirements) || mg->requirements == NULL)
		return 0;
	for (p = mg->requirements; *p != '\0'; p += n) {
		p += strspn(p, " \t,");
		s = p;
		if ((n = strcspn(p, " \t,")) == 0)
			break;
		found = 0;
		for (i = 0; i + 1 < nmods; i++)
			if (strlen(mods[i]->name) == n &&
			    strncmp(mods[i]->name, s, n) == 0 &&
			    mods[i]->initialised)
				found = 1;
		if (found)
			continue;
		if (!name_ok(s, n))
			log_error("module \"%s\": requires \"%.*s\", which is "
			    "not a module name", name, (int)n, s);
		else {
			char req[CORE_MODULE_NAME_MAX + 1];

			memcpy(req, s, n);
			req[n] = '\0';
			if (listed_later(req))
				log_error("module \"%s\": requires \"%s\", "
				    "which [modules] load lists after it; "
				    "list \"%s\" before \"%s\"", name, req,
				    req, name);
			else
				log_error("module \"%s\": requires \"%s\", "
				    "which is not loaded; add \"%s\" before "
				    "\"%s\" to [modules] load", name, req, req,
				    name);
		}
		return -1;
	}
	return 0;
}

/*
 * The module's own tables, before its init: a shipped module's
 * migrations are <[storage] migrations>/<name>/, a module loaded by path
 * ships them beside its .so as <name>.sql/ (absent: it has none).
 */
static int
module_migrate(const char *name, const char *file)
{
	char dir[4096];
	const char *slash;

	if (file == NULL)
		return core_store_migrate(name, NULL);
	slash = strrchr(file, '/');
	if ((size_t)snprintf(dir, sizeof(dir), "%.*s/%s.sql",
	    (int)(slash - file), file, name) >= sizeof(dir)) {
		log_error("module \"%s\": path too long", name);
		return -1;
	}
	return core_store_migrate(name, dir);
}

/* file: the .so to open, or NULL for "<dir>/<name>.so". */
static int
module_load_one(struct core_config *cfg, const char *dir, const char *name,
    const char *file)
{
	int (*init)(const struct sales_core *, struct sales_module *);
	struct sales_module *m, **p;
	char path[4096], why[256];
	Dl_info di;
	size_t i;

	for (i = 0; i < nmods; i++) {
		if (strcmp(mods[i]->name, name) == 0) {
			log_error("module \"%s\": listed twice in [modules] load",
			    name);
			return -1;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (p = realloc(mods, (nmods + 1) * sizeof(*p))) == NULL) {
		free(m);
		log_error("module \"%s\": out of memory", name);
		return -1;
	}
	mods = p;
	mods[nmods++] = m;
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->cfg = cfg;
	if (file != NULL)
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	if ((m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		log_error("module \"%s\": cannot load \"%s\": %s", name, path,
		    dlerror());
		return -1;
	}
	m->magic = dlsym(m->dl, "sales_module_magic");
	if (m->magic == NULL) {
		log_error("module \"%s\": no magic block in \"%s\" (a module "
		    "must use SALES_MODULE_MAGIC)", name, path);
		return -1;
	}
	if (core_module_check_magic(name, m->magic, why, sizeof(why)) == -1) {
		log_error("module \"%s\": %s", name, why);
		return -1;
	}
	m->base = dladdr(m->magic, &di) != 0 ? di.dli_fbase : NULL;
	*(void **)&init = dlsym(m->dl, "sales_module_init");
	if (init == NULL) {
		log_error("module \"%s\": no sales_module_init in \"%s\"",
		    name, path);
		return -1;
	}
	*(void **)&m->fini = dlsym(m->dl, "sales_module_fini");
	*(void **)&m->reload = dlsym(m->dl, "sales_module_reload");
	if (module_requires(name, m->magic) == -1)
		return -1;
	if (module_migrate(name, file) == -1) {
		log_error("module \"%s\": its migrations failed (see above)",
		    name);
		return -1;
	}
	in_init = m;
	if (init(&core_api, m) != 0) {
		in_init = NULL;
		/* Now, whatever the loader does next: no timer of it fires. */
		module_forget(m);
		log_error("module \"%s\": init failed (see above)", name);
		return -1;
	}
	in_init = NULL;
	m->initialised = 1;
	/*
	 * Built against a table without ws_event (ABI before 1.4), it could
	 * not say what it sends: it may send anything.
	 */
	if (m->magic->core_size < offsetof(struct sales_core, ws_event) +
	    sizeof(core_api.ws_event) &&
	    core_ws_event_declare(m->name, "*") == -1)
		return -1;
	log_info("module \"%s\" %s loaded", name, m->magic->version ?
	    m->magic->version : "");
	return 0;
}

int
core_modules_load(struct core_config *cfg, const char *dir, const char *list)
{
	char name[CORE_MODULE_NAME_MAX + 1], entry[4096];
	const char *p = list, *s, *file;
	size_t n;

	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		s = p;
		n = strcspn(p, " \t,");
		p += n;
		file = NULL;
		if (memchr(s, '/', n) != NULL) {
			if (n >= sizeof(entry)) {
				log_error("module path \"%.*s\" is too long",
				    (int)n, s);
				goto fail;
			}
			memcpy(entry, s, n);
			entry[n] = '\0';
			if ((file = core_config_resolve(cfg, entry)) == NULL)
				goto fail;
			s = strrchr(entry, '/') + 1;
			n = strlen(s);
			if (n > 3 && strcmp(s + n - 3, ".so") == 0)
				n -= 3;
		}
		if (!name_ok(s, n)) {
			log_error("module \"%.*s\": invalid name (use lower-case "
			    "letters, digits and _, at most %d)", (int)n, s,
			    CORE_MODULE_NAME_MAX);
			goto fail;
		}
		memcpy(name, s, n);
		name[n] = '\0';
		load_rest = p;
		if (module_load_one(cfg, dir, name, file) == -1)
			goto fail;
	}
	load_rest = NULL;
	return 0;
fail:
	load_rest = NULL;
	core_modules_fini();
	return -1;
}

void
core_modules_fini(void)
{
	struct sales_module *m;

	while (nmods > 0) {
		m = mods[--nmods];
		if (m->initialised && m->fini)
			m->fini();
		/* Whatever it registered goes too, even after a failed init. */
		module_forget(m);
		/*
		 * No dlclose: the process is ending, and keeping the code
		 * mapped keeps a leak checker's stack traces readable.
		 */
		free(m);
	}
	free(mods);
	mods = NULL;
}

/*
 * Offers cfg to every module that can reload, CHECK first for all of
 * them; on the first refusal the ones that accepted are told ABORT and
 * read their old section again.
 */
int
core_modules_reload_check(struct core_config *cfg)
{
	struct core_config *old;
	size_t i, j;

	for (i = 0; i < nmods; i++) {
		if (mods[i]->reload == NULL)
			continue;
		old = mods[i]->cfg;
		mods[i]->cfg = cfg;
		if (mods[i]->reload(mods[i], SALES_RELOAD_CHECK) == 0) {
			mods[i]->old = old;
			continue;
		}
		mods[i]->cfg = old;
		log_error("module \"%s\": refused its new [%s] section (see "
		    "above)", mods[i]->name, mods[i]->name);
		for (j = 0; j < i; j++) {
			if (mods[j]->reload == NULL)
				continue;
			mods[j]->cfg = mods[j]->old;
			mods[j]->reload(mods[j], SALES_RELOAD_ABORT);
		}
		return -1;
	}
	return 0;
}

void
core_modules_reload_commit(void)
{
	size_t i;

	for (i = 0; i < nmods; i++)
		if (mods[i]->reload != NULL)
			mods[i]->reload(mods[i], SALES_RELOAD_COMMIT);
}

/* The modules that read their section only at start-up. */
int
core_modules_reloadable(size_t i)
{
	return i < nmods && mods[i]->reload != NULL;
}

size_t
core_modules_count(void)
{
	return nmods;
}

const char *
core_modules_name(size_t i)
{
	return i < nmods ? mods[i]->name : NULL;
}

const char *
core_modules_version(size_t i)
{
	return i < nmods && mods[i]->magic && mods[i]->magic->version ?
	    mods[i]->magic->version : "";
}

int
core_module_in_init(struct sales_module *m)
{
	return m != NULL && m == in_init;
}

struct sales_module *
core_module_initialising(void)
{
	return in_init;
}

/*
 * Services without a self argument learn their caller from the address
 * they return to: the module whose mapping holds it.
 */
struct sales_module *
core_module_at(const void *addr)
{
	Dl_info di;
	size_t i;

	if (addr == NULL || dladdr(addr, &di) == 0 || di.dli_fbase == NULL)
		return NULL;
	for (i = 0; i < nmods; i++)
		if (mods[i]->base == di.dli_fbase)
			return mods[i];
	return NULL;
}

const char *
core_module_name(struct sales_module *m)
{
	return m ? m->name : "core";
}

struct core_config *
core_module_config(struct sales_module *m)
{
	return m->cfg;
}
