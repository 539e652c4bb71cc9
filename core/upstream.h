/*
 * upstream.h - the cached, single-flight upstream call behind the
 * upstream_* members of the service table (<sales/upstream.h>).
 *
 * Written only in terms of a struct sales_core, which every function
 * takes at creation and keeps: core/api.c passes core_api, a test kit
 * may pass a fake table.  Nothing here reaches other core internals:
 * of the table it uses httpc_call, mono_ms, buf_printf, buf_free and
 * log, and nothing else.  Loop thread only.
 */
#ifndef CORE_UPSTREAM_H
#define CORE_UPSTREAM_H

#include <sales/module.h>

struct sales_upstream *core_upstream_new(const struct sales_core *core,
	    struct sales_module *self, const struct sales_upstream_opts *opts);
int	core_upstream_configure(struct sales_upstream *up,
	    const struct sales_upstream_opts *opts);
int	core_upstream_get(struct sales_upstream *up,
	    sales_upstream_done_cb done, void *arg);
void	core_upstream_refresh(struct sales_upstream *up);
void	core_upstream_invalidate(struct sales_upstream *up);
int	core_upstream_peek(const struct sales_upstream *up,
	    struct sales_upstream_result *result);
void	core_upstream_free(struct sales_upstream *up);

#endif /* CORE_UPSTREAM_H */
