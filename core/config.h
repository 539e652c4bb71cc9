/*
 * config.h - sales.ini: sections of key = value, ${NAME} taken from the
 * environment or a .env file beside the config, typed getters that
 * remember which keys were read so the rest can be reported as unknown.
 */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H

#include <stddef.h>

struct core_config;

/* NULL with err filled ("sales.ini:12: ...") on failure. */
struct core_config *core_config_load(const char *path, char *err,
	    size_t errlen);
void	core_config_free(struct core_config *cfg);

/*
 * Getters.  A missing key gives def (and 0); a malformed or out-of-range
 * value is logged as "[section] key: why" and gives -1.  Strings live as
 * long as cfg.
 */
const char *core_config_str(struct core_config *cfg, const char *section,
	    const char *key, const char *def);
int	core_config_int(struct core_config *cfg, const char *section,
	    const char *key, long long def, long long min, long long max,
	    long long *out);
int	core_config_double(struct core_config *cfg, const char *section,
	    const char *key, double def, double min, double max, double *out);
int	core_config_bool(struct core_config *cfg, const char *section,
	    const char *key, int def, int *out);
int	core_config_url(struct core_config *cfg, const char *section,
	    const char *key, const char *def, const char **out);
void	core_config_each(struct core_config *cfg, const char *section,
	    void (*cb)(const char *key, const char *value, void *arg),
	    void *arg);

/*
 * Paths.  The directory of the config file (absolute), and a path
 * taken relative to it unless absolute: every relative path in
 * sales.ini means "beside the config", wherever salesd was started
 * from.  core_config_path is core_config_str resolved; a NULL or ""
 * value stays as it is.  NULL (logged) only when too long or out of
 * memory.  Strings live as long as cfg.
 */
const char *core_config_dir(struct core_config *cfg);
const char *core_config_resolve(struct core_config *cfg, const char *path);
const char *core_config_path(struct core_config *cfg, const char *section,
	    const char *key, const char *def);

/*
 * For a reload: whether section.key differs between a and b (set in one
 * only counts), and how many keys differ in section (NULL: in all).
 * Neither marks a key read.
 */
int	core_config_changed(const struct core_config *a,
	    const struct core_config *b, const char *section, const char *key);
size_t	core_config_changes(const struct core_config *a,
	    const struct core_config *b, const char *section);

/*
 * Warns about every key that was never read in a section listed in
 * used, and about sections not listed at all.  Returns the number of
 * unknown keys (unused sections are only noted).
 */
int	core_config_report_unknown(struct core_config *cfg,
	    const char *const *used, size_t nused);

#endif /* CORE_CONFIG_H */
