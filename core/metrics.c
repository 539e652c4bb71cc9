/*
 * metrics.c - the registry behind GET /metrics.  Modules register
 * counters and gauges at init; the core renders them with its own
 * figures (core/ops.c).  Loop thread only.  Also the histogram helper
 * the core's own histograms share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"

struct sales_metric {
	char	owner[72];
	char	name[96];
	char	help[160];
	int	gauge;
	double	value;
};

static struct sales_metric	**metrics;
static size_t			  nmetrics;

struct sales_metric *
core_metric_new(const char *owner, const char *name, const char *help,
    int gauge)
{
	struct sales_metric *m, **p;
	size_t i;

	for (i = 0; name[i]; i++) {
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_')) {
			core_log(owner, SALES_LOG_ERROR, "metric \"%s\": use "
			    "lower-case letters, digits and _", name);
			return NULL;
		}
	}
	for (i = 0; i < nmetrics; i++) {
		if (strcmp(metrics[i]->name + 7, name) == 0) {
			core_log(owner, SALES_LOG_ERROR, "metric \"%s\" is "
			    "already registered", name);
			return NULL;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (p = realloc(metrics, (nmetrics + 1) * sizeof(*p))) == NULL) {
		free(m);
		return NULL;
	}
	metrics = p;
	snprintf(m->owner, sizeof(m->owner), "%s", owner);
	snprintf(m->name, sizeof(m->name), "salesd_%s", name);
	snprintf(m->help, sizeof(m->help), "%s", help ? help : name);
	m->gauge = gauge;
	metrics[nmetrics++] = m;
	return m;
}

void
core_metric_add(struct sales_metric *m, double v)
{
	if (m)
		m->value += v;
}

void
core_metric_set(struct sales_metric *m, double v)
{
	if (m)
		m->value = v;
}

void
core_metrics_render(struct sales_buf *b)
{
	size_t i;

	for (i = 0; i < nmetrics; i++)
		core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
		    metrics[i]->name, metrics[i]->help, metrics[i]->name,
		    metrics[i]->gauge ? "gauge" : "counter", metrics[i]->name,
		    metrics[i]->value);
}

void
core_metrics_free(void)
{
	size_t i;

	for (i = 0; i < nmetrics; i++)
		free(metrics[i]);
	free(metrics);
	metrics = NULL;
	nmetrics = 0;
}

void
core_metrics_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nmetrics; i++) {
		if (strcmp(metrics[i]->owner, owner) == 0)
			free(metrics[i]);
		else
			metrics[k++] = metrics[i];
	}
	nmetrics = k;
}

const double	core_hist_seconds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
const size_t	core_hist_nseconds = sizeof(core_hist_seconds) /
		    sizeof(core_hist_seconds[0]);

void
core_hist_observe(struct core_hist *h, const double *bounds, size_t nbounds,
    double v)
{
	size_t i;

	for (i = 0; i < nbounds && v > bounds[i]; i++)
		;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void
core_hist_render(struct sales_buf *b, const char *name, const char *labels,
    const double *bounds, size_t nbounds, const struct core_hist *h)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < nbounds; i++) {
		cum += h->counts[i];
		core_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
		    labels, sep, bounds[i], (unsigned long long)cum);
	}
	core_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
	    sep, (unsigned long long)h->count);
	if (labels[0] != '\0')
		core_buf_printf(b, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name,
		    labels, h->sum, name, labels, (unsigned long long)h->count);
	else
		core_buf_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum,
		    name, (unsigned long long)h->count);
}
