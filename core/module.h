/*
 * module.h - the module loader: dlopen, magic check, init in load order,
 * fini in reverse.
 */
#ifndef CORE_MODULE_H
#define CORE_MODULE_H

#include <stddef.h>

#include <sales/module.h>

struct core_config;

#define CORE_MODULE_NAME_MAX	64

/*
 * Loads and initialises every module named in list (white space or
 * comma separated) from dir.  On failure one line naming the module is
 * logged, the modules already initialised are finalised, and -1 is
 * returned.
 */
int	core_modules_load(struct core_config *cfg, const char *dir,
	    const char *list);
/* fini in reverse load order, then dlclose. */
void	core_modules_fini(void);
/*
 * SIGHUP: every module that exports reload checks its section of cfg
 * (-1, all of them back on the old one, when one refuses); then commit.
 */
int	core_modules_reload_check(struct core_config *cfg);
void	core_modules_reload_commit(void);
int	core_modules_reloadable(size_t i);
size_t	core_modules_count(void);
const char *core_modules_name(size_t i);
const char *core_modules_version(size_t i);

/* The module whose init is running, or NULL: registration is init only. */
int	core_module_in_init(struct sales_module *m);
/* The module whose init is running, or NULL. */
struct sales_module *core_module_initialising(void);
/* The loaded module whose code holds addr, or NULL (the core's, say). */
struct sales_module *core_module_at(const void *addr);
const char *core_module_name(struct sales_module *m);
struct core_config *core_module_config(struct sales_module *m);

/* Checks a magic block against this core; fills why on mismatch. */
int	core_module_check_magic(const char *name,
	    const struct sales_module_magic *mg, char *why, size_t whylen);

#endif /* CORE_MODULE_H */
