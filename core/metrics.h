/*
 * metrics.h - counters and gauges for GET /metrics (Prometheus text).
 */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

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

/*
 * A histogram of the core's own, for one label set.  counts[i] is the
 * number of observations in bucket i (not cumulative: rendering sums);
 * counts[nbounds] is past the last bound.  Not locked: the owner locks
 * when more than the loop thread observes.
 */
#define CORE_HIST_MAX	16

struct core_hist {
	uint64_t	counts[CORE_HIST_MAX + 1];
	uint64_t	count;
	double		sum;
};

/* Seconds, from 1 ms to 10 s: HTTP answers, commits, upstream calls. */
extern const double	core_hist_seconds[];
extern const size_t	core_hist_nseconds;

void	core_hist_observe(struct core_hist *h, const double *bounds,
	    size_t nbounds, double v);
/*
 * Appends name_bucket (cumulative, le="+Inf" last), name_sum and
 * name_count for one series; labels is "" or 'a="x",b="y"'.  HELP and
 * TYPE are the caller's, once per family.
 */
void	core_hist_render(struct sales_buf *b, const char *name,
	    const char *labels, const double *bounds, size_t nbounds,
	    const struct core_hist *h);

/*
 * WebSocket messages by type, counted by core/ws.c on the loop thread:
 * sent when a message's frame leaves a client's queue written whole,
 * dropped when it leaves unwritten (README, "Metrics").  A type gets its
 * index on first use; past CORE_WS_TYPES types, or past 64 bytes, they
 * share "other".
 */
#define CORE_WS_TYPES	64

int	core_metrics_ws_type(const char *type);
void	core_metrics_ws_sent(int type);
void	core_metrics_ws_dropped(int type, uint64_t n);
/* One fan-out slice written, in seconds (ws.c's flush, loop thread). */
void	core_metrics_ws_slice(double seconds);

#endif /* CORE_METRICS_H */
