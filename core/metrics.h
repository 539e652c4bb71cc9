/*
 * metrics.h - counters and gauges for GET /metrics (Prometheus text).
 */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

#include <sales/types.h>

struct sales_metric;

struct sales_metric *core_metric_new(const char *owner, const char *name,
	    const char *help, int gauge);
void	core_metric_add(struct sales_metric *m, double v);
void	core_metric_set(struct sales_metric *m, double v);
/* Appends every registered metric in exposition format. */
void	core_metrics_render(struct sales_buf *b);
void	core_metrics_free(void);
/* Drops every metric of owner: undoes a module's init. */
void	core_metrics_forget(const char *owner);

#endif /* CORE_METRICS_H */
