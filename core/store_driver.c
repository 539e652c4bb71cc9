/*
 * store_driver.c - finding the storage driver: the embedded default, or
 * a shared object named by [storage] driver, loaded with dlopen() only
 * then (so a deployment on the default never loads, say, libpq), and the
 * table of core services a driver gets.
 *
 * It does not run anything on a driver: that is store.c.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "log.h"
#include "store.h"

/* Loaded drivers stay for the life of the process (no unload). */
#define DRIVERS_MAX	8

static struct {
	char				 name[256];
	const struct sales_store_driver	*drv;
} loaded[DRIVERS_MAX];
static size_t	nloaded;

static void
host_log(enum sales_log_level level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	core_log("store", level, "%s", msg);
}

const struct sales_store_host core_store_host = {
	.size = sizeof(struct sales_store_host),
	.log = host_log,
	.result_new = core_store_result_new,
	.result_add = core_store_result_add,
	.result_free = core_store_result_free,
	.result_rows = core_store_rows,
	.result_value = core_store_value,
	.migrations_list = core_store_migrations_list,
	.migrations_free = core_store_migrations_free,
	.migration_read = core_store_migration_read,
	.mono_ms = core_mono_ms,
};

const char *
core_store_default_driver(void)
{
	return core_store_embedded.name;
}

/* [a-z0-9_]+, as module names: nothing that leaves driver_dir. */
static int
driver_name_ok(const char *name)
{
	const char *p;

	for (p = name; *p != '\0'; p++)
		if (!islower((unsigned char)*p) &&
		    !isdigit((unsigned char)*p) && *p != '_')
			return 0;
	return p != name && p - name < 64;
}

static const struct sales_store_driver *
driver_open(const char *name, const char *path, char *err, size_t errlen)
{
	const struct sales_store_driver *drv;
	sales_store_driver_init_fn init;
	void *h;

	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		/* A named driver ships as the package salesd-<name>. */
		if (strchr(name, '/') == NULL)
			snprintf(err, errlen, "storage driver \"%s\": cannot "
			    "load \"%s\": %s; install the salesd-%s package "
			    "(from source: build the driver, with its client "
			    "library installed)", name, path, dlerror(), name);
		else
			snprintf(err, errlen, "storage driver \"%s\": cannot "
			    "load \"%s\": %s; is it built (and its client "
			    "library installed)?", name, path, dlerror());
		return NULL;
	}
	*(void **)&init = dlsym(h, SALES_STORE_DRIVER_SYMBOL);
	if (init == NULL) {
		snprintf(err, errlen, "storage driver \"%s\": \"%s\" is not a "
		    "storage driver (no %s)", name, path,
		    SALES_STORE_DRIVER_SYMBOL);
		goto fail;
	}
	if ((drv = init(&core_store_host)) == NULL) {
		snprintf(err, errlen, "storage driver \"%s\": initialisation "
		    "failed (see above)", name);
		goto fail;
	}
	if (drv->abi != SALES_STORE_DRIVER_ABI ||
	    drv->size < sizeof(struct sales_store_driver)) {
		snprintf(err, errlen, "storage driver \"%s\": ABI mismatch "
		    "(server %u, driver %u); rebuild it against this "
		    "server's SDK", name, SALES_STORE_DRIVER_ABI, drv->abi);
		goto fail;
	}
	if (drv->name == NULL || (strchr(name, '/') == NULL &&
	    strcmp(drv->name, name) != 0)) {
		snprintf(err, errlen, "storage driver \"%s\": \"%s\" calls "
		    "itself \"%s\"", name, path, drv->name ? drv->name : "");
		goto fail;
	}
	return drv;
fail:
	dlclose(h);
	return NULL;
}

const struct sales_store_driver *
core_store_driver_load(const struct core_store_config *cfg, char *err,
    size_t errlen)
{
	const struct sales_store_driver *drv;
	const char *name = cfg->driver;
	char path[PATH_MAX];
	size_t i;

	if (name == NULL || *name == '\0' ||
	    strcmp(name, core_store_embedded.name) == 0)
		return &core_store_embedded;
	for (i = 0; i < nloaded; i++)
		if (strcmp(loaded[i].name, name) == 0)
			return loaded[i].drv;
	if (strchr(name, '/') != NULL)
		snprintf(path, sizeof(path), "%s", name);
	else if (!driver_name_ok(name)) {
		snprintf(err, errlen, "[storage] driver \"%s\": a name is "
		    "[a-z0-9_]+ (or give a path to a .so)", name);
		return NULL;
	} else if (cfg->driver_dir == NULL ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s.so", cfg->driver_dir,
	    name) >= sizeof(path)) {
		snprintf(err, errlen, "storage driver \"%s\" is not available "
		    "(no driver directory; built in: \"%s\")", name,
		    core_store_embedded.name);
		return NULL;
	}
	if (nloaded == DRIVERS_MAX || strlen(name) >= sizeof(loaded[0].name)) {
		snprintf(err, errlen, "storage driver \"%s\": too many drivers",
		    name);
		return NULL;
	}
	if ((drv = driver_open(name, path, err, errlen)) == NULL)
		return NULL;
	snprintf(loaded[nloaded].name, sizeof(loaded[0].name), "%s", name);
	loaded[nloaded++].drv = drv;
	return drv;
}
